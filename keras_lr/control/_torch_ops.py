"""The rate controller's per-step arithmetic in PyTorch's own operations.

Keras runs a PyTorch train step eagerly, one operation at a time, and
each `keras.ops` call there converts and checks its inputs first: on a
scalar that costs about fifteen times the torch operation itself. This
is the controller's arithmetic (`RateController._rate`) on the torch
tensors of its variables, on their device, with no host read: a
schedule's product, and a curve's lookup on an accelerator (on the CPU,
curves are read on the host: `RateController._host_call`).
"""

import torch


def lookup(table, first: int, step):
    """`table[clip(step - first)]`, on the table's device."""
    return table[torch.clamp(step - first, 0, table.shape[0] - 1)]


def rate(value, multiplier):
    """`float32(float64(value) * multiplier)`; `multiplier` is float64."""
    value = torch.as_tensor(value).to(torch.float64)
    return (value * multiplier).to(torch.float32)
