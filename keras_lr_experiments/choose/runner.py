"""Runs part `choose`: every way on every workload and seed, resumably.

Two streams of work run side by side, one per CPU core: this process
trains the local ways and the grid reference (a thread), while Ray runs
PBT and ASHA (the main thread drives Ray Tune; its `TrainingServer`
trains in another process). Each run's record is one JSON file,
written atomically; a rerun skips every record whose `spec` matches.
Then `table` and `figure` write the results.
"""

import threading
import time
import traceback
from pathlib import Path

from keras_lr_experiments import _files
from keras_lr_experiments.choose import population
from keras_lr_experiments.choose import ways
from keras_lr_experiments.choose.workloads import WORKLOADS
from keras_lr_experiments.progress import Progress

FOLDER = "choose"


def run_path(out: Path, workload: str, way: str, seed: int, rate=None):
    folder = out / "runs" / workload
    if rate is not None:
        return folder / "grid" / f"lr{rate:.3g}_seed{seed}.json"
    return folder / f"{way}_seed{seed}.json"


def spec(workload, way: str, seed: int, budget, rate=None) -> dict:
    """What identifies a record; a saved one is reused only if equal."""
    return {
        "way": way,
        "workload": workload.summary(),
        "seed": seed,
        "learning_rate": rate,
        "budget": budget.to_dict(),
    }


def saved(path: Path, expected: dict):
    record = _files.read_json(path)
    if isinstance(record, dict) and record.get("spec") == expected:
        return record
    return None


class Lines:
    """One line per finished run, with time left, from either stream."""

    def __init__(self, total: int, stream=None):
        self.progress = Progress(total, stream=stream)
        self.lock = threading.Lock()
        self.done = 0
        self.total = total

    def line(self, title: str, note: str, skipped: bool = False) -> None:
        with self.lock:
            self.done += 1
            elapsed = time.monotonic() - self.progress.start
            if not skipped:
                self.progress.worked += 1
            left = "?"
            if self.progress.worked:
                rate = elapsed / max(self.progress.worked, 1)
                left = Progress.clock(rate * (self.total - self.done))
            self.progress.write(
                f"[{self.done}/{self.total} | elapsed "
                f"{Progress.clock(elapsed)} | left ~{left}] {title}: {note}"
            )


def check_budget(record: dict, budget) -> None:
    """Raises `RuntimeError` unless the record spent exactly the budget
    (the grid: each rate)."""
    if record["steps"] != budget.steps:
        raise RuntimeError(
            f"{record['workload']}/{record['way']} seed {record['seed']} "
            f"spent {record['steps']} steps (measured), not the budget's "
            f"{budget.steps}"
        )


def _summary_note(record: dict, metric: str) -> str:
    final = record["final"]

    def fmt(value):
        return "nan" if value is None else f"{value:.4f}"

    text = (
        f"test_loss={fmt(final['test_loss'])} "
        f"test_{metric}={fmt(final['test_' + metric])} "
        f"lr={record['learning_rate']:.3g} steps={record['steps']} "
        f"(search {record['search_steps']})"
    )
    for message in record.get("notes", []):
        text += f"\n    note: {message}"
    return text


class _Stopped(Exception):
    """The main thread was interrupted: the local stream ends."""


def _local_stream(loaded, budget, out, lines, records, errors, stop):
    """The local ways and the grid, workload by workload; ends before its
    next run once `stop` is set."""
    from keras_lr_experiments.choose import budget as budgets

    try:
        counter = budgets.StepCounter()
        for workload in loaded:
            context = None
            metric = workload.metric
            for seed in budget.seeds:
                found = {}
                for way in ways.LOCAL_WAYS:
                    path = run_path(out, workload.name, way, seed)
                    expected = spec(workload, way, seed, budget)
                    title = f"{workload.name}/{way}_seed{seed}"
                    record = saved(path, expected)
                    if record is not None:
                        records.append(record)
                        lines.line(title, "complete before: skipped", True)
                        continue
                    if stop.is_set():
                        raise _Stopped()
                    if context is None:
                        context = ways.Context(workload, counter)
                    kind = ways.SEARCH_OF.get(way)
                    if kind is not None and kind not in found:
                        found[kind] = ways.search(context, kind, seed, budget)
                    record = ways.run_local_way(
                        context, way, seed, budget, found.get(kind)
                    )
                    check_budget(record, budget)
                    record["spec"] = expected
                    _files.write_json(path, record)
                    records.append(record)
                    lines.line(title, _summary_note(record, metric))
            for seed in budget.grid_seeds:
                for rate in ways.grid_rates(budget):
                    path = run_path(out, workload.name, "grid", seed, rate)
                    expected = spec(workload, "grid", seed, budget, rate)
                    title = f"{workload.name}/grid lr={rate:.3g} seed{seed}"
                    record = saved(path, expected)
                    if record is not None:
                        records.append(record)
                        lines.line(title, "complete before: skipped", True)
                        continue
                    if stop.is_set():
                        raise _Stopped()
                    if context is None:
                        context = ways.Context(workload, counter)
                    record = ways.run_grid_rate(context, rate, seed, budget)
                    check_budget(record, budget)
                    record["spec"] = expected
                    _files.write_json(path, record)
                    records.append(record)
                    lines.line(title, _summary_note(record, metric))
    except _Stopped:
        return
    except BaseException as error:  # reported by the main thread
        errors.append((error, traceback.format_exc()))


def _ray_stream(loaded, budget, out, lines, records) -> None:
    pending = []
    for workload in loaded:
        for seed in budget.seeds:
            for way in ways.RAY_WAYS:
                path = run_path(out, workload.name, way, seed)
                expected = spec(workload, way, seed, budget)
                title = f"{workload.name}/{way}_seed{seed}"
                record = saved(path, expected)
                if record is not None:
                    records.append(record)
                    lines.line(title, "complete before: skipped", True)
                else:
                    pending.append((workload, seed, way, path, expected, title))
    if not pending:
        return
    session = population.Session()
    with session:
        for workload, seed, way, path, expected, title in pending:
            start = time.monotonic()
            found = session.search(way, workload.name, seed, budget)
            record = ways.population_record(
                way, workload, seed, found, time.monotonic() - start
            )
            check_budget(record, budget)
            record["spec"] = expected
            _files.write_json(path, record)
            records.append(record)
            lines.line(title, _summary_note(record, workload.metric))
        stopping = time.monotonic()
    lines.progress.write(
        f"    Ray shut down in {time.monotonic() - stopping:.1f} s"
    )


def run_choose(
    out: Path,
    budget,
    command: str,
    stream=None,
    names=WORKLOADS,
    use_ray: bool | None = None,
) -> dict:
    """Runs (or resumes) part `choose` into `out / "choose"`; writes the
    table and the figures; returns the summary.

    Args:
        out: The reproduction's `--out`.
        budget: A `budget.Budget`.
        command: The command line, written into the results.
        stream: Where the progress lines go (default stdout).
        names: The workloads (tests run fewer).
        use_ray: Whether to run PBT and ASHA; default: when Ray is
            installed.
    """
    from keras_lr_experiments.choose import figure
    from keras_lr_experiments.choose import table
    from keras_lr_experiments.choose import workloads

    out = Path(out) / FOLDER
    _files.check_writable(out)
    loaded = [workloads.load_workload(name) for name in names]
    if use_ray is None:
        use_ray = population.ray_available()
    per_workload = (
        len(budget.seeds) * len(ways.LOCAL_WAYS)
        + len(budget.grid_seeds) * budget.grid_rates
    )
    if use_ray:
        per_workload += len(budget.seeds) * len(ways.RAY_WAYS)
    lines = Lines(per_workload * len(loaded), stream=stream)
    if not use_ray:
        lines.progress.write(
            "note: Ray is not installed: PBT and ASHA are skipped "
            '(pip install -e ".[tune]" to run them)'
        )
    records, errors = [], []
    stop = threading.Event()
    local = threading.Thread(
        target=_local_stream,
        args=(loaded, budget, out, lines, records, errors, stop),
        daemon=True,
    )
    start = time.monotonic()
    local.start()
    try:
        if use_ray:
            _ray_stream(loaded, budget, out, lines, records)
    except BaseException:
        # Interrupted or failed: the local stream ends after its current
        # run (kept, as every finished one), then this goes on up.
        stop.set()
        raise
    finally:
        local.join()
    lines.progress.write(
        f"    all runs done in {Progress.clock(time.monotonic() - start)}; "
        "writing the table and figures"
    )
    if errors:
        error, trace = errors[0]
        lines.progress.write(trace)
        raise error
    summary = table.write_tables(
        out, loaded, records, budget, command, ray_ran=use_ray
    )
    figure.write_figures(out, loaded, summary)
    lines.progress.write(
        f"done: part choose in {Progress.clock(time.monotonic() - start)}; "
        f"results in {out}"
    )
    return summary
