"""Closed-form references in plain Python `math`, independent of keras_lr.

Each follows the published formula (Keras docs, PyTorch's scheduler
source, the papers) step by step, in float64.
"""

import math


def exponential(step, lr0, decay_steps, rate, staircase=False):
    p = step / decay_steps
    if staircase:
        p = math.floor(p)
    return lr0 * rate**p


def inverse_time(step, lr0, decay_steps, rate, staircase=False):
    p = step / decay_steps
    if staircase:
        p = math.floor(p)
    return lr0 / (1 + rate * p)


def polynomial(step, lr0, decay_steps, end=1e-4, power=1.0, cycle=False):
    if cycle:
        mult = 1 if step == 0 else math.ceil(step / decay_steps)
        decay_steps = decay_steps * mult
    else:
        step = min(step, decay_steps)
    return (lr0 - end) * (1 - step / decay_steps) ** power + end


def piecewise(step, boundaries, values):
    for boundary, value in zip(boundaries, values):
        if step <= boundary:
            return value
    return values[-1]


def cosine(step, lr0, decay_steps, alpha=0.0, warmup_target=None, warmup=0):
    if warmup_target is not None and step < warmup:
        return lr0 + (warmup_target - lr0) * step / warmup
    peak = lr0 if warmup_target is None else warmup_target
    local = min(
        step - (warmup if warmup_target is not None else 0), decay_steps
    )
    c = 0.5 * (1 + math.cos(math.pi * local / decay_steps))
    return peak * ((1 - alpha) * c + alpha)


def cosine_restarts(step, lr0, first, t_mul=2.0, m_mul=1.0, alpha=0.0):
    # Walk the periods one by one (no closed-form index).
    start, length, peak = 0.0, float(first), 1.0
    while step >= start + length:
        start += length
        length *= t_mul
        peak *= m_mul
    fraction = (step - start) / length
    c = 0.5 * peak * (1 + math.cos(math.pi * fraction))
    return lr0 * ((1 - alpha) * c + alpha)


def gaussian(step, lr0, decay_steps, alpha=0.0):
    bell = math.exp(-0.5 * (step / decay_steps) ** 2)
    return lr0 * (alpha + (1 - alpha) * bell)


def torch_cyclic(
    step, base_lr, max_lr, up, down=None, mode="triangular", gamma=1.0
):
    """PyTorch `CyclicLR.get_lr` at `last_epoch == step`."""
    down = up if down is None else down
    total = float(up + down)
    ratio = up / total
    cycle = math.floor(1 + step / total)
    x = 1.0 + step / total - cycle
    if x <= ratio:
        scale_factor = x / ratio
    else:
        scale_factor = (x - 1) / (ratio - 1)
    height = (max_lr - base_lr) * scale_factor
    if mode == "triangular":
        return base_lr + height * 1.0
    if mode == "triangular2":
        # PyTorch writes 1 / 2.0 ** (cycle - 1), which overflows far out.
        return base_lr + height * 0.5 ** (cycle - 1)
    return base_lr + height * gamma**step


def torch_one_cycle(
    step,
    max_lr,
    total_steps,
    pct_start=0.3,
    div_factor=25.0,
    final_div_factor=1e4,
    anneal="cos",
    three_phase=False,
):
    """PyTorch `OneCycleLR.get_lr` at `last_epoch == step`."""
    initial = max_lr / div_factor
    minimum = initial / final_div_factor
    if three_phase:
        phases = [
            (float(pct_start * total_steps) - 1, initial, max_lr),
            (float(2 * pct_start * total_steps) - 2, max_lr, initial),
            (total_steps - 1, initial, minimum),
        ]
    else:
        phases = [
            (float(pct_start * total_steps) - 1, initial, max_lr),
            (total_steps - 1, max_lr, minimum),
        ]

    def anneal_fn(start, end, pct):
        if anneal == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    start_step = 0
    for i, (end_step, start, end) in enumerate(phases):
        if step <= end_step or i == len(phases) - 1:
            pct = (step - start_step) / (end_step - start_step)
            return anneal_fn(start, end, pct)
        start_step = end_step
    raise AssertionError("unreachable")


def linear_warmup(step, inner, warmup_steps, lr0=0.0):
    if step < warmup_steps:
        return lr0 + (inner(0) - lr0) * step / warmup_steps
    return inner(step - warmup_steps)


def joined(step, pieces, boundaries):
    start = 0
    index = 0
    for boundary in boundaries:
        if step >= boundary:
            start = boundary
            index += 1
    return pieces[index](step - start)


def cooldown(t, shape):
    """WSD cooldown factor: 1 at t == 0, 0 at t == 1 (Hägele et al.)."""
    if shape == "linear":
        return 1 - t
    if shape == "cosine":
        return 0.5 * (1 + math.cos(math.pi * t))
    if shape == "1-sqrt":
        return 1 - math.sqrt(t)
    raise ValueError(shape)


def warmup_stable_decay(
    step, peak, warmup, stable, decay, lr0=0.0, end=0.0, shape="1-sqrt"
):
    if step < warmup:
        return lr0 + (peak - lr0) * step / warmup
    if step < warmup + stable:
        return peak
    if step >= warmup + stable + decay:
        return end
    t = (step - warmup - stable) / decay
    return end + (peak - end) * cooldown(t, shape)
