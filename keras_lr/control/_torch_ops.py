"""The rate controller's per-step arithmetic in PyTorch's own operations.

Keras runs a PyTorch train step eagerly, one operation at a time, and
each `keras.ops` call there converts and checks its inputs first: on a
scalar that costs about fifteen times the torch operation itself. These
are the controller's formulas (`RateController._rate`,
`_momentum_value`) on the torch tensors of its variables, on their
device, with no host read.
"""

import torch


def _lookup(curve, step):
    table, first, active = curve
    index = torch.clamp(step - first, 0, table.shape[0] - 1)
    return table[index], active


def rate(user_rate, step, curve, multiplier):
    """`float32(float64(curve[step - first] or user_rate) * multiplier)`;
    `curve` is `(table, first, active)` or `None`."""
    value = user_rate.to(torch.float64)
    if curve is not None:
        looked_up, active = _lookup(curve, step)
        value = torch.where(active, looked_up.to(torch.float64), value)
    return (value * multiplier.to(torch.float64)).to(torch.float32)


def momentum(step, curve):
    """`curve[step - first]` (a momentum table is always in force)."""
    return _lookup(curve, step)[0]
