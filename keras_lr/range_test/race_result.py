"""`RaceResult`: what `choose_learning_rate` found, with its JSON and plot."""

import dataclasses
import math

from keras_lr import _files
from keras_lr.control import rate_controller
from keras_lr.range_test.bracket import READINGS
from keras_lr.range_test.result import RangeTestResult


@dataclasses.dataclass
class RaceResult:
    """What `choose_learning_rate` found, and the whole race behind it.

    Attributes:
        learning_rate: The answer: the race's winner (the highest rate it
            ran at during the race; with a float rate, simply its rate),
            refined between the finalists when the winner held
            (`refined_from`).
        multiplier: The factor on the model's compiled rate (a float or a
            schedule) that the winner is; `apply(model)` multiplies the
            model's rate by it.
        range_test: The stage-1 `keras_lr.RangeTestResult`.
        bracket: `(low, high)`, the rates raced across.
        candidates: The rates raced, ascending.
        entries: One dict per candidate and rung: `candidate` (rate),
            `rung`, `steps` (trained in all), `score` (held-out
            `monitor`; `inf` or `-inf` for a diverged run) and `status`
            (`"ok"` or `"diverged"`).
        monitor: The held-out metric scored, e.g. `"val_loss"`.
        mode: `"min"` or `"max"`.
        initial_score: `monitor` of the model before the race.
        cost: `range_test_steps`, `race_steps`, `range_test_seconds`,
            `race_seconds`: what choosing cost.
        config: The arguments of the call.
        degenerate_bracket: `True` when the range test's curve gave a
            bracket narrower than 3x (then widened to a decade below its
            top; `keras_lr.range_test.bracket.read_bracket`).
        held: `True` when the answer's held-out scores never got worse
            than its own earlier ones (nor the score before the race).
        fallback_from: The ranked winner when it did not hold and the
            answer fell back to a candidate that did, else `None`.
        refined_from: The winner (a candidate) when the answer was moved
            from it between the finalists, by the vertex of a parabola in
            log rate through the scores of the deepest rung with three or
            more candidates (`keras_lr.range_test.refine`), else `None`.
        notices: The warnings the race gave, in words.
    """

    learning_rate: float
    multiplier: float
    range_test: RangeTestResult
    bracket: tuple
    candidates: list
    entries: list
    monitor: str
    mode: str
    initial_score: float
    cost: dict
    config: dict
    degenerate_bracket: bool = False
    held: bool = True
    fallback_from: float | None = None
    refined_from: float | None = None
    notices: list = dataclasses.field(default_factory=list)

    def apply(self, model) -> float:
        """Multiplies `model`'s rate (float or schedule) by `multiplier`
        through its rate controller; returns the rate of the next step."""
        return rate_controller(model).multiply(self.multiplier)

    def rung_entries(self, rung: int) -> list[dict]:
        return [e for e in self.entries if e["rung"] == rung]

    @property
    def rungs(self) -> int:
        return 1 + max(e["rung"] for e in self.entries)

    @property
    def winner(self) -> float:
        """The candidate the race ended on (after any fall-back), before
        the answer was refined between the finalists."""
        if self.refined_from is not None:
            return self.refined_from
        return self.learning_rate

    @property
    def at_edge(self) -> str | None:
        """`"top"` or `"bottom"` when the winner is the highest or lowest
        of three or more candidates, else `None`. The best rate may then
        lie outside the bracket the range test gave."""
        ranked = sorted(self.candidates)
        if len(ranked) < 3:
            return None
        index = min(
            range(len(ranked)),
            key=lambda i: abs(math.log(ranked[i] / self.winner)),
        )
        if index == len(ranked) - 1:
            return "top"
        if index == 0:
            return "bottom"
        return None

    def summary(self) -> str:
        """A one-line account of the race and its cost."""
        steps = ", ".join(
            str(self.rung_entries(i)[0]["steps"]) for i in range(self.rungs)
        )
        best = [e for e in self.entries if e["candidate"] == self.winner]
        return (
            f"race: {len(self.candidates)} candidates in "
            f"[{self.bracket[0]:.3g}, {self.bracket[1]:.3g}], "
            f"{self.rungs} rung(s) to {steps} steps; winner "
            f"{self.winner:.3g} ({self.monitor} {best[-1]['score']:.4g})"
            + (
                ""
                if self.refined_from is None
                else f", refined between the finalists to "
                f"{self.learning_rate:.3g}"
            )
            + f"; cost {self.cost['range_test_steps']}"
            f" range-test + {self.cost['race_steps']} race steps, "
            f"{self.cost['range_test_seconds'] + self.cost['race_seconds']:.1f}"
            " s"
            + (
                ""
                if self.at_edge is None
                else f"; the winner is the {self.at_edge} candidate"
            )
            + (
                ""
                if self.fallback_from is None
                else f"; fell back from {self.fallback_from:.3g}, which "
                "got worse"
            )
            + ("" if self.held else "; no candidate's score held")
            + ("; degenerate bracket" if self.degenerate_bracket else "")
        )

    def to_dict(self) -> dict:
        def number(x):
            return float(x) if math.isfinite(x) else str(float(x))

        return {
            "learning_rate": float(self.learning_rate),
            "multiplier": float(self.multiplier),
            "range_test": self.range_test.to_dict(),
            "bracket": [float(v) for v in self.bracket],
            "candidates": [float(v) for v in self.candidates],
            "entries": [
                dict(entry, score=number(entry["score"]))
                for entry in self.entries
            ],
            "monitor": self.monitor,
            "mode": self.mode,
            "initial_score": number(self.initial_score),
            "cost": dict(self.cost),
            "config": dict(self.config),
            "degenerate_bracket": bool(self.degenerate_bracket),
            "held": bool(self.held),
            "fallback_from": None
            if self.fallback_from is None
            else float(self.fallback_from),
            "refined_from": None
            if self.refined_from is None
            else float(self.refined_from),
            "notices": list(self.notices),
        }

    def save_json(self, path) -> None:
        _files.write_json(path, self.to_dict())

    @classmethod
    def from_dict(cls, data: dict) -> "RaceResult":
        data = dict(data)
        data["range_test"] = RangeTestResult.from_dict(data["range_test"])
        data["bracket"] = tuple(data["bracket"])
        data["entries"] = [
            dict(entry, score=float(entry["score"]))
            for entry in data["entries"]
        ]
        data["initial_score"] = float(data["initial_score"])
        return cls(**data)

    def plot(self, path=None):
        """The range-test curve with the bracket shaded, above the race:
        each candidate's held-out score at each rung, the winner marked.

        Returns the matplotlib `Figure`.
        """
        from matplotlib.figure import Figure

        figure = Figure(figsize=(7, 7.5))
        top, bottom = figure.subplots(2, 1, sharex=True)
        self.range_test.plot(ax=top, methods=READINGS)
        top.axvspan(*self.bracket, color="C4", alpha=0.08, label="bracket")
        top.legend(loc="best", fontsize="small")
        top.set_xlabel("")
        scores = []
        for rung in range(self.rungs):
            rows = self.rung_entries(rung)
            finite = [e for e in rows if math.isfinite(e["score"])]
            scores += [e["score"] for e in finite]
            bottom.plot(
                [e["candidate"] for e in finite],
                [e["score"] for e in finite],
                "o-",
                color=f"C{rung}",
                label=f"rung {rung}: {rows[0]['steps']} steps",
            )
            lost = [e["candidate"] for e in rows if e["status"] == "diverged"]
            if lost:
                bottom.plot(
                    lost,
                    [max(scores or [1.0])] * len(lost),
                    "x",
                    color=f"C{rung}",
                    label=f"rung {rung}: diverged",
                )
        if math.isfinite(self.initial_score):
            bottom.axhline(
                self.initial_score,
                color="0.5",
                linestyle=":",
                label=f"before the race: {self.initial_score:.4g}",
            )
            scores.append(self.initial_score)
        positive = [v for v in scores if v > 0]
        if len(positive) == len(scores) and max(scores) > 20 * min(scores):
            bottom.set_yscale("log")
        if self.refined_from is not None:
            bottom.axvline(
                self.refined_from,
                color="0.4",
                linestyle=":",
                label=f"winner: {self.refined_from:.3g}",
            )
        bottom.axvline(
            self.learning_rate,
            color="k",
            linestyle="--",
            label=(
                f"answer: {self.learning_rate:.3g}"
                if self.refined_from is not None
                else f"winner: {self.learning_rate:.3g}"
            ),
        )
        bottom.set_xscale("log")
        bottom.set_xlabel("learning rate (log scale)")
        bottom.set_ylabel(f"held-out {self.monitor}")
        bottom.set_title("race (successive halving)")
        bottom.legend(loc="best", fontsize="small")
        if path is not None:
            figure.savefig(path, dpi=120, bbox_inches="tight")
        return figure
