"""The rate controller's per-step arithmetic in PyTorch's own operations.

Keras runs a PyTorch train step eagerly, one operation at a time, and
each `keras.ops` call there converts and checks its inputs first: on a
scalar that costs about fifteen times the torch operation itself. This
is the controller's product (`RateController._rate`) for a schedule's
rate, on the torch tensors of its variables, on their device, with no
host read. (Curves are read on the host: `RateController._host_call`.)
"""

import torch


def rate(value, multiplier):
    """`float32(float64(value) * multiplier)`; `multiplier` is float64."""
    value = torch.as_tensor(value).to(torch.float64)
    return (value * multiplier).to(torch.float32)
