"""The outcome of a learning-rate range test: arrays, suggestions, plot."""

import math

import numpy as np

from keras_lr import _files
from keras_lr.range_test import suggestions as _suggestions

# A suggestion is not trusted when the raw loss wanders around its smoothed
# curve by more than this fraction of the curve's whole fall.
NOISE_LIMIT = 0.5
# Repeats whose suggestions spread over more than this factor disagree.
SPREAD_LIMIT = 10.0
# A finished sweep reached too-high rates if its smoothed loss rose back by
# more than this fraction of its fall.
RISE_LIMIT = 0.25
STOP_REASONS = ("finished", "diverged", "non_finite")


class RangeTestResult:
    """The curve(s) of a learning-rate range test and what to read off them.

    With `repeats=k`, the result holds `k` runs of the same sweep from the
    same start; `learning_rates`, `losses` and `smoothed_losses` are those
    of the first run, `runs` gives each run as its own result, and each
    suggestion is the geometric mean over the runs (`suggestion_spread`
    gives the minimum and maximum).

    Which suggestion: the default `"valley"` (the middle of the longest
    run of consecutive falls of the smoothed curve) lies well inside the
    region where the loss falls, clear of the flat start and of the
    blow-up; the idea is fastai's default, the code is ours. On our digits
    check (`benchmarks/range_test_quality.py`, table in
    docs/studies/range_test.md) it was
    the best of the three with Adam (within 10% of the best fixed rate's
    loss); with plain SGD, whose best rate for a short run sits just under
    the edge of stability, it was 1.5x below the best rate and 1.22x its
    loss, and `"steepest"` came closer. `"steepest"` hangs on a single
    point and moves with noise; `"minimum"` (the rate of the lowest loss
    divided by 10) depends on exactly where the curve turns up. On a bank
    of ten settings (`benchmarks/range_test_rules.py`,
    docs/studies/range_test.md)
    the valley was more than 10x off the best fixed rate least often of
    the three (1 in 10), no reading suited every optimizer (plain SGD's
    best rate sits near where the curve turns up, Adam's well before it),
    and the warnings of `warnings()` fired on 5 of the 6 settings where
    the valley's loss was more than 1.5x the best.

    Attributes:
        learning_rates: float64 array, the rate of each step run.
        losses: float64 array, the loss of each step itself.
        smoothed_losses: float64 array, the debiased moving average.
        stop_reason: `"finished"`, `"diverged"` or `"non_finite"`.
        runs: list of single-run `RangeTestResult`s.
        config: dict of the sweep's arguments.

    Args:
        learning_rates: A 1-D array-like, the rate of each step.
        losses: A 1-D array-like, the loss of each step (same length).
        stop_reason: `"finished"`, `"diverged"` or `"non_finite"`.
        config: A dict of the sweep's arguments, or `None`.
        runs: A list of single-run results (repeats), or `None`.
        smoothed_losses: A 1-D array-like or `None`: the smoothed curve
            when the test already computed it, else smoothed here with
            `config["beta"]` (default 0.98).
    """

    def __init__(
        self,
        learning_rates,
        losses,
        stop_reason: str = "finished",
        config: dict | None = None,
        runs: list["RangeTestResult"] | None = None,
        smoothed_losses=None,
    ):
        self.learning_rates = np.asarray(learning_rates, dtype=np.float64)
        self.losses = np.asarray(losses, dtype=np.float64)
        if self.learning_rates.shape != self.losses.shape:
            raise ValueError(
                "Arguments `learning_rates` and `losses` must have the same "
                f"length. Received: {self.learning_rates.size} and "
                f"{self.losses.size}"
            )
        if stop_reason not in STOP_REASONS:
            expected = ", ".join(repr(r) for r in STOP_REASONS)
            raise ValueError(
                f"Argument `stop_reason` must be one of {expected}. "
                f"Received: stop_reason={stop_reason!r}"
            )
        self.stop_reason = stop_reason
        self.config = dict(config or {})
        self.beta = float(self.config.get("beta", 0.98))
        if smoothed_losses is None:
            smoothed_losses = _suggestions.smooth_losses(self.losses, self.beta)
        self.smoothed_losses = np.asarray(smoothed_losses, dtype=np.float64)
        if self.smoothed_losses.shape != self.losses.shape:
            raise ValueError(
                "Arguments `losses` and `smoothed_losses` must have the same "
                f"length. Received: {self.losses.size} and "
                f"{self.smoothed_losses.size}"
            )
        self.runs = list(runs) if runs else [self]

    @classmethod
    def from_runs(
        cls, curves, stop_reasons, config: dict | None = None
    ) -> "RangeTestResult":
        """Builds a result from `[(learning_rates, losses), ...]`."""
        runs = [
            cls(lrs, losses, stop_reason=reason, config=config)
            for (lrs, losses), reason in zip(curves, stop_reasons)
        ]
        first = runs[0]
        return cls(
            first.learning_rates,
            first.losses,
            stop_reason=first.stop_reason,
            config=config,
            runs=runs if len(runs) > 1 else None,
        )

    @classmethod
    def from_results(
        cls, results: list["RangeTestResult"]
    ) -> "RangeTestResult":
        """Joins single-run results of one sweep as the runs of one result.

        Each keeps its smoothed curve as it is (the smoothing the test
        stopped on); the config is the first's.
        """
        first = results[0]
        return cls(
            first.learning_rates,
            first.losses,
            stop_reason=first.stop_reason,
            config=first.config,
            runs=results if len(results) > 1 else None,
            smoothed_losses=first.smoothed_losses,
        )

    @property
    def repeats(self) -> int:
        return len(self.runs)

    def suggestion(self, method: str = "valley") -> float:
        """The suggested learning rate (geometric mean over the runs).

        Args:
            method: `"valley"` (default), `"steepest"` or `"minimum"`.

        Raises:
            ValueError: for an unknown method, or a curve with fewer than 3
                finite points.
        """
        return self.suggestion_spread(method)["geometric_mean"]

    def suggestion_spread(self, method: str = "valley") -> dict:
        """`{"geometric_mean", "min", "max", "values"}` of one method."""
        _suggestions.check_method(method)
        values = [
            _suggestions.suggest(
                run.learning_rates, run.smoothed_losses, method
            )
            for run in self.runs
        ]
        return {
            "geometric_mean": _suggestions.geometric_mean(values),
            "min": float(min(values)),
            "max": float(max(values)),
            "values": [float(v) for v in values],
        }

    def suggestions(self) -> dict:
        """Every method's spread, skipping methods the curve cannot answer."""
        out = {}
        for method in _suggestions.METHODS:
            try:
                out[method] = self.suggestion_spread(method)
            except ValueError:
                out[method] = None
        return out

    def warnings(self) -> list[str]:
        """Plain-words problems with the curve (empty when it looks sound)."""
        messages = []
        num_steps = int(self.config.get("num_steps", self.losses.size))
        early = max(3, num_steps // 10)
        for k, run in enumerate(self.runs):
            name = (
                f"Run {k + 1} of the range test"
                if self.repeats > 1
                else ("The range test")
            )
            if run.stop_reason == "finished" and not run.turned_up():
                messages.append(
                    f"{name} never diverged: the loss did not turn up before "
                    f"end_lr={self.config.get('end_lr')}. The suggestion may "
                    "be too low; raise `end_lr`."
                )
            elif run.losses.size <= early:
                messages.append(
                    f"{name} diverged within the first {run.losses.size} "
                    f"step(s), at learning rate {run.learning_rates[-1]:.3g}: "
                    "lower `start_lr`."
                )
            ratio = _suggestions.noise_ratio(run.losses, run.smoothed_losses)
            if math.isinf(ratio):
                messages.append(
                    f"{name} never saw the loss fall, so no suggestion can be "
                    "trusted: check the model and data, lower `start_lr` or "
                    "raise `num_steps`."
                )
            elif ratio > NOISE_LIMIT:
                messages.append(
                    f"{name} is too noisy to trust its suggestion: the loss "
                    f"wanders {ratio:.2g}x as much as the curve falls "
                    f"(limit {NOISE_LIMIT}). Use a larger batch, more "
                    "`num_steps`, or `repeats`."
                )
        if self.repeats > 1:
            try:
                spread = self.suggestion_spread()
                factor = spread["max"] / spread["min"]
                if factor > SPREAD_LIMIT:
                    messages.append(
                        f"The {self.repeats} repeats disagree: their valley "
                        f"suggestions span a factor {factor:.3g} (limit "
                        f"{SPREAD_LIMIT:g}); the suggestion is not to be "
                        "trusted."
                    )
            except ValueError:
                pass
        return messages

    def turned_up(self) -> bool:
        """Whether the smoothed loss rose clearly after its lowest point.

        "Clearly": by more than `RISE_LIMIT` times the fall before it and
        by more than 5% of the lowest loss. A
        sweep that stopped on the divergence rule has turned up too.
        """
        if self.stop_reason != "finished":
            return True
        smooth = self.smoothed_losses[np.isfinite(self.smoothed_losses)]
        if smooth.size == 0:
            return True
        lowest = float(np.min(smooth))
        fall = float(smooth[0]) - lowest
        rise = float(smooth[-1]) - lowest
        # The second bound keeps noise on a flat curve from counting.
        return rise > RISE_LIMIT * max(fall, 0.0) and rise > 0.05 * abs(lowest)

    def to_dict(self) -> dict:
        """JSON-native description: config, every run's arrays, suggestions."""

        def number(x):
            x = float(x)
            return x if math.isfinite(x) else None

        return {
            "config": self.config,
            "runs": [
                {
                    "learning_rates": [number(v) for v in run.learning_rates],
                    "losses": [number(v) for v in run.losses],
                    "smoothed_losses": [number(v) for v in run.smoothed_losses],
                    "stop_reason": run.stop_reason,
                }
                for run in self.runs
            ],
            "suggestions": self.suggestions(),
        }

    def save_json(self, path) -> None:
        """Writes `to_dict()` to `path` as JSON."""
        _files.write_json(path, self.to_dict())

    @classmethod
    def from_dict(cls, data: dict) -> "RangeTestResult":
        """Inverse of `to_dict` (non-finite losses come back as `nan`)."""

        def array(values):
            return np.array(
                [np.nan if v is None else v for v in values], dtype=np.float64
            )

        return cls.from_runs(
            [
                (array(run["learning_rates"]), array(run["losses"]))
                for run in data["runs"]
            ],
            [run["stop_reason"] for run in data["runs"]],
            config=data["config"],
        )

    def plot(self, path=None, ax=None, methods=("valley",)):
        """Plots the curve on a log-scaled rate axis.

        Raw losses as points, the smoothed curve as a line (one per run),
        a marker at each suggestion and, with repeats, a shaded band from
        the lowest to the highest suggestion of the first method.

        Args:
            path: A path or `None`. Where to save the figure as PNG.
            ax: A matplotlib `Axes` to draw on, or `None` for a new figure.
            methods: The suggestion methods to mark.

        Returns:
            The matplotlib `Axes`.
        """
        if ax is None:
            from matplotlib.figure import Figure

            figure = Figure(figsize=(7, 4.5))
            ax = figure.add_subplot()
        else:
            figure = ax.figure
        finite = []
        for k, run in enumerate(self.runs):
            label = "loss per step" if k == 0 else None
            ax.plot(
                run.learning_rates,
                run.losses,
                ".",
                color="0.6",
                markersize=3,
                alpha=0.6,
                label=label,
            )
            ax.plot(
                run.learning_rates,
                run.smoothed_losses,
                color="C0",
                alpha=1.0 if k == 0 else 0.5,
                label="smoothed" if k == 0 else None,
            )
            ok = run.smoothed_losses[np.isfinite(run.smoothed_losses)]
            finite.extend(ok.tolist())
        colors = {"valley": "C3", "steepest": "C2", "minimum": "C1"}
        for i, method in enumerate(methods):
            try:
                spread = self.suggestion_spread(method)
            except ValueError:
                continue
            lr = spread["geometric_mean"]
            color = colors.get(method, f"C{i + 4}")
            ax.axvline(
                lr, color=color, linestyle="--", label=f"{method}: {lr:.3g}"
            )
            if self.repeats > 1:
                ax.axvspan(
                    spread["min"],
                    spread["max"],
                    color=color,
                    alpha=0.15,
                    label=f"{method} over {self.repeats} repeats",
                )
        ax.set_xscale("log")
        if finite:
            low, high = min(finite), max(finite)
            first = self.smoothed_losses[0]
            top = min(high, first + 2.0 * abs(first - low) + 1e-12)
            margin = 0.05 * (top - low + 1e-12)
            ax.set_ylim(low - margin, top + margin)
        ax.set_xlabel("learning rate (log scale)")
        ax.set_ylabel("training loss")
        ax.set_title("learning-rate range test")
        ax.legend(loc="best", fontsize="small")
        if path is not None:
            figure.savefig(path, dpi=120, bbox_inches="tight")
        return ax
