"""The rate controller's per-step arithmetic in PyTorch's own operations.

Keras runs a PyTorch train step eagerly, one operation at a time, and
each `keras.ops` call there converts and checks its inputs first: on a
scalar that costs about fifteen times the torch operation itself. These
are the controller's formulas (`RateController._rate`,
`_momentum_value`) on the torch tensors of its variables, on their
device, with no host read.
"""

import torch


def lookup(table, first: int, step):
    """`table[clip(step - first)]`, on the table's device."""
    return table[torch.clamp(step - first, 0, table.shape[0] - 1)]


def rate(value, multiplier):
    """`float32(float64(value) * multiplier)`; `multiplier` is float64."""
    return (value.to(torch.float64) * multiplier).to(torch.float32)
