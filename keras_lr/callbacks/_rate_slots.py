"""Which optimizer slots carry the learning rate, and how a rollback makes
them agree with a new rate.

A rollback restores the optimizer's slots as they were saved, at the rate
of that time; the steps after it run at the rate in force now (cut since,
or moved by a schedule). A slot that holds rate-scaled steps (SGD's
velocity) would then move the weights at the old speed for its first
steps. `rescale(optimizer, old_rate, new_rate)` rewrites exactly those
slots as if the rate had been `new_rate` all along; the others are
statistics of the gradients, or positions, and stay bit for bit.

Derived from each optimizer's update in Keras 3 (`g` the gradient, `lr`
the rate of the step, `r = new_rate / old_rate`):

```
optimizer           slot (update)                          rule
SGD, momentum > 0   momentum: m = mu*m - lr*g (Nesterov    m *= r
                    too)
RMSprop             velocity, average_gradient: means of   none
                    g**2, g
RMSprop, momentum   momentum: m = mu*m + lr*g/sqrt(v)      m *= r
Ftrl                linear: z += g - (n1**-p - n0**-p)/lr*w  below
Ftrl                accumulator: n += g**2                 none
Adam, AdamW, Nadam  moments: means of g, g**2 (Adamax:     none
Adamax, Lamb        max |g|)
Adagrad             accumulator: n += g**2                 none
Adadelta            means of g**2, dx**2 (dx has no lr)    none
Adafactor           r, c, v: factored means of g**2        none
Lion                momentum: m = b2*m + (1-b2)*g          none
Muon                momentum: m = mu*m + g; Adam moments   none
ScheduleFreeAdamW   momentum (z): a point, not a step;     none
                    velocity: mean of g**2
```

`SGD`: `m = -sum_k mu**k lr_k g_k`; had the rate been `new_rate`
throughout, `m` would be `r` times larger. `RMSprop`'s momentum likewise.

`Ftrl`: the weights are a function of `z` (`linear`) and the rate,
`w = (clip(z, -l1, l1) - z) / q` with
`q = (n**-p + beta) / lr + 2 * l2`. The rule keeps the restored weights
and gives the `z` that yields them at the new rate, so the next step is an
FTRL-Proximal step at `new_rate` from there:

```python
z = z                                        # |z| <= l1 (w = 0)
z = sign(z) * (l1 + (|z| - l1) * q_new / q_old)   # otherwise
# l1 = l2 = 0: z *= old_rate / new_rate
```

The optimizer's own bookkeeping (step counter, loss scale, gradient
accumulators, weight EMAs) carries no rate. Any other optimizer class
(a subclass included: it may change the update) is unknown here: a
rescale warns and leaves its slots as they were.
"""

import warnings

import keras
import numpy as np

from keras_lr import _backend
from keras_lr import _keras_internals as internals


def _scale(slots, ratio: float) -> None:
    for slot in slots:
        if slot is None:
            continue
        value = _backend.to_numpy(slot)
        slot.assign((value.astype("float64") * ratio).astype(value.dtype))


def _velocity_rule(read_slots):
    def rule(optimizer, old_rate, new_rate):
        _scale(read_slots(optimizer), new_rate / old_rate)

    return rule


def _ftrl_rule(optimizer, old_rate, new_rate):
    p = float(optimizer.learning_rate_power)
    l1 = float(optimizer.l1_regularization_strength)
    l2 = float(optimizer.l2_regularization_strength)
    beta = float(optimizer.beta)
    for accumulator, linear in zip(*internals.ftrl_slots(optimizer)):
        n = _backend.to_numpy(accumulator).astype("float64")
        z = _backend.to_numpy(linear)
        q_old = (n**-p + beta) / old_rate + 2.0 * l2
        q_new = (n**-p + beta) / new_rate + 2.0 * l2
        z64 = z.astype("float64")
        excess = np.abs(z64) - l1
        moved = np.sign(z64) * (l1 + excess * (q_new / q_old))
        linear.assign(np.where(excess > 0, moved, z64).astype(z.dtype))


def _no_rule(optimizer, old_rate, new_rate):
    """The optimizer's slots hold no rate."""


# Exact classes: a subclass may change the update, so it is unknown.
RULES = {
    keras.optimizers.SGD: _velocity_rule(internals.sgd_velocities),
    keras.optimizers.RMSprop: _velocity_rule(internals.rmsprop_momentums),
    keras.optimizers.Ftrl: _ftrl_rule,
    keras.optimizers.Adam: _no_rule,
    keras.optimizers.AdamW: _no_rule,
    keras.optimizers.Nadam: _no_rule,
    keras.optimizers.Adamax: _no_rule,
    keras.optimizers.Lamb: _no_rule,
    keras.optimizers.Adagrad: _no_rule,
    keras.optimizers.Adadelta: _no_rule,
    keras.optimizers.Adafactor: _no_rule,
    keras.optimizers.Lion: _no_rule,
    keras.optimizers.Muon: _no_rule,
    keras.optimizers.ScheduleFreeAdamW: _no_rule,
}


def is_known(optimizer) -> bool:
    """Whether the rule of `optimizer`'s class (under a loss-scale
    wrapper) is declared here."""
    return internals.optimizer_class(optimizer) in RULES


def rescale(optimizer, old_rate: float, new_rate: float) -> None:
    """Makes the slots that carry the rate agree with `new_rate`.

    Args:
        optimizer: A built Keras optimizer (a `LossScaleOptimizer` is
            looked through).
        old_rate: A Python float > 0. The rate the slots were built with
            (the rate in force when they were saved).
        new_rate: A Python float >= 0. The rate of the next step.

    An optimizer class without a declared rule warns and is left as it is.
    """
    old_rate, new_rate = float(old_rate), float(new_rate)
    if old_rate == new_rate or not old_rate > 0:
        return
    base = internals.base_optimizer(optimizer)
    cls = internals.optimizer_class(base)
    rule = RULES.get(cls)
    if rule is None:
        warnings.warn(
            f"keras_lr does not know whether the slots of optimizer class "
            f"{cls.__qualname__} carry the learning rate, so after "
            f"rolling back they are restored as saved (at rate "
            f"{old_rate:.6g}) although the next steps run at "
            f"{new_rate:.6g}. Keras' own optimizers are known: "
            f"{', '.join(sorted(c.__name__ for c in RULES))}.",
            stacklevel=3,
        )
        return
    if base.built:
        rule(base, old_rate, new_rate)
