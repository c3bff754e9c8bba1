"""Load with wrk: a figure's requests for a few seconds, interleaved in rounds.

Each run's numbers come from the Lua ``done()`` of ``wrk/summary.lua`` (one
JSON line), not from wrk's human-readable output.
"""

import json
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .infra import CannotRun

LUA_DIR = Path(__file__).parent / "wrk"


@dataclass(frozen=True)
class Wrk:
    path: str
    threads: int
    connections: int
    seconds: int

    def describe(self):
        return f"wrk -t{self.threads} -c{self.connections} -d{self.seconds}s"


@dataclass(frozen=True)
class Target:
    """What a figure loads: ``url``, or with ``ids`` (a file, one id a line)
    ``url`` + each id in turn. ``watch``, if given, is called once mid-run
    (which gateway copy holds how many connections)."""

    url: str
    ids: Path | None = None
    watch: Callable[[], dict] | None = None


def run(wrk, url, script="summary.lua", args=(), seconds=None, watch=None):
    """One wrk run: req/s, latency percentiles in ms, errors."""
    seconds = seconds or wrk.seconds
    command = [wrk.path, f"-t{wrk.threads}", f"-c{wrk.connections}", f"-d{seconds}s"]
    # A long timeout: a slow answer must count in the percentiles, not vanish.
    command += ["--timeout", "10s", "-s", script, url]
    if args:
        command += ["--", *map(str, args)]
    # In the Lua directory: the scripts load summary.lua by a relative path.
    process = subprocess.Popen(
        command, cwd=LUA_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    split = None
    try:
        if watch:
            time.sleep(min(1.0, seconds / 2))
            split = watch()
        out, err = process.communicate(timeout=seconds + 60)
    except subprocess.TimeoutExpired:
        raise CannotRun(f"wrk did not finish: {' '.join(command)}") from None
    finally:
        if process.poll() is None:  # interrupted, or hung
            process.kill()
            process.wait()
    lines = [line for line in out.splitlines() if line.startswith("BENCH_JSON ")]
    if process.returncode != 0 or not lines:
        raise CannotRun(f"wrk failed ({err.strip() or out.strip()}): {' '.join(command)}")
    raw = json.loads(lines[-1].removeprefix("BENCH_JSON "))
    latency = raw["latency_us"]
    result = {
        "req_per_s": raw["requests"] / (raw["duration_us"] / 1e6),
        "requests": raw["requests"],
        "p50_ms": latency["p50"] / 1000,
        "p90_ms": latency["p90"] / 1000,
        "p99_ms": latency["p99"] / 1000,
        "max_ms": latency["max"] / 1000,
        # status: answers >= 400; the others are socket errors and timeouts.
        "errors": {kind: count for kind, count in raw["errors"].items() if count},
    }
    if split is not None:
        result["connections_per_copy"] = split
    return result


def run_target(wrk, target, stretch, stretches, seconds=None):
    """``target`` once; an ids target reads stretch ``stretch`` of ``stretches``
    of its file, so that every run of it asks for ids no other run asked for."""
    if target.ids is None:
        return run(wrk, target.url, seconds=seconds, watch=target.watch)
    count = len(target.ids.read_text().splitlines())
    length = max(1, count // (stretches * wrk.threads))
    first = stretch * wrk.threads * length
    args = (target.ids, first, length)
    return run(wrk, target.url, "ids.lua", args, seconds=seconds, watch=target.watch)


def interleaved(wrk, targets, rounds, progress):
    """Every target once a round, in the same order each round, so that drift
    on a shared machine hits every figure alike; the median of each figure.
    A one-second warm-up of each target first (connections, pools, caches)."""
    for target in targets.values():
        run_target(wrk, target, rounds, rounds + 1, seconds=1)
    runs = {name: [] for name in targets}
    for round_index in range(rounds):
        progress(f"round {round_index + 1}/{rounds}: {', '.join(targets)}")
        for name, target in targets.items():
            runs[name].append(run_target(wrk, target, round_index, rounds + 1))
    return {name: median_of(name_runs) for name, name_runs in runs.items()}


def median_of(runs):
    """The median of each number over the runs, and the runs themselves."""
    keys = ("req_per_s", "p50_ms", "p90_ms", "p99_ms")
    figure = {key: statistics.median(run[key] for run in runs) for key in keys}
    errors = {}
    for one in runs:
        for kind, count in one["errors"].items():
            errors[kind] = errors.get(kind, 0) + count
    return {**figure, "errors": errors, "runs": runs}
