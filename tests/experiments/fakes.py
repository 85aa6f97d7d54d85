"""A stand-in for the range test, shared by the experiments' tests."""

import numpy as np


class FakeResult:
    """Stands in for the range test's result: a valley at `rate`."""

    def __init__(self, rate):
        self.rate = rate
        self.learning_rates = np.geomspace(1e-6, 10.0, 10)
        self.losses = (np.log10(self.learning_rates) - np.log10(rate)) ** 2

    def suggestion(self, method="valley"):
        return self.rate

    def plot(self, path=None, ax=None):
        ax.plot(self.learning_rates, self.losses)
        ax.set_xscale("log")
        return ax

    def to_dict(self):
        return {
            "learning_rates": self.learning_rates,
            "losses": self.losses,
        }


class FakeRace:
    """Stands in for the race's result: `rate` chosen."""

    def __init__(self, rate):
        self.learning_rate = rate
        self.range_test = FakeResult(rate)

    def plot(self, path=None):
        from matplotlib.figure import Figure

        figure = Figure(figsize=(6, 4))
        self.range_test.plot(ax=figure.subplots())
        return figure

    def to_dict(self):
        return {
            "learning_rate": self.learning_rate,
            "range_test": self.range_test.to_dict(),
        }
