"""The one table on the terminal, the same figures as JSON, the targets, and
the machine they were measured on."""

import json
import os
import platform
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

from kombu import Connection
from sqlalchemy import text
from sqlalchemy.pool import NullPool

from servicekit.config import ROOT
from servicekit.db import make_engine

RESULTS_DIR = Path(__file__).parent / "results"

# Rows of the table, in this order; each figure's checks follow on its row.
ORDER = (
    "ceiling",
    "rpc_echo",
    "pg_read",
    "read_hot",
    "list_hot",
    "read_cold",
    "ceiling_phase2",
    "read_hot_all",
    "list_hot_all",
    "list_deep",
    "search",
    "search_common",
    "write",
    "notification_lag",
    "staleness",
    "feed_idle",
    "feed_fanout",
    "feed_delivery",
    "feed_rss",
    "read_hot_no_feed",
    "read_hot_feed",
)


def _ratio(figure, reference, key="req_per_s"):
    return lambda figures: figures[figure][key] / figures[reference][key]


def _field(figure, key):
    return lambda figures: figures[figure][key]


@dataclass(frozen=True)
class Check:
    """A number the table shows for ``figure``; with a target, whether it is met."""

    figure: str
    what: str
    value: Callable[[dict], float]
    op: str = ""  # ">=" or "<=", with target
    target: float | None = None

    def evaluate(self, figures):
        try:
            value = self.value(figures)
        except (KeyError, TypeError, ZeroDivisionError):  # a figure that could not be taken
            value = None
        met = None
        if value is not None and self.target is not None:
            met = value >= self.target if self.op == ">=" else value <= self.target
        return {
            "figure": self.figure,
            "what": self.what,
            "value": value,
            "op": self.op or None,
            "target": self.target,
            "met": met,
        }


CHECKS = (
    Check("rpc_echo", "req/s ÷ ceiling", _ratio("rpc_echo", "ceiling")),
    Check("read_hot", "req/s ÷ ceiling", _ratio("read_hot", "ceiling"), ">=", 3.0),
    Check("read_hot", "p99 ÷ ceiling p99", _ratio("read_hot", "ceiling", "p99_ms"), "<=", 2),
    Check("list_hot", "req/s ÷ ceiling", _ratio("list_hot", "ceiling"), ">=", 2.0),
    Check("pg_read", "req/s ÷ ceiling", _ratio("pg_read", "ceiling")),
    Check("read_cold", "req/s ÷ rpc_echo", _ratio("read_cold", "rpc_echo"), ">=", 0.85),
    Check("read_cold", "req/s ÷ pg_read", _ratio("read_cold", "pg_read")),
    Check("ceiling_phase2", "req/s ÷ ceiling", _ratio("ceiling_phase2", "ceiling")),
    Check(
        "read_hot_all",
        "req/s ÷ ceiling_phase2",
        _ratio("read_hot_all", "ceiling_phase2"),
        ">=",
        5.5,
    ),
    Check("list_hot_all", "req/s ÷ ceiling_phase2", _ratio("list_hot_all", "ceiling_phase2")),
    Check(
        "list_deep",
        "p50 ÷ first page p50 at 1,000 rows, in echoes",
        _field("list_deep", "ratio"),
        "<=",
        1.2,
    ),
    Check("list_deep", "p50 ÷ first page p50, same time", _field("list_deep", "ratio_now")),
    Check("search", "p50 ÷ read_cold p50, in turn", _field("search", "ratio"), "<=", 3),
    Check(
        "search_common",
        "p99 ÷ read_cold p50, in turn",
        _field("search_common", "ratio_p99"),
        "<=",
        10,
    ),
    Check("write", "req/s ÷ rpc_echo", _ratio("write", "rpc_echo")),
    Check("notification_lag", "p99 ms", _field("notification_lag", "p99_ms"), "<=", 1000),
    Check("staleness", "p99 ms", _field("staleness", "p99_ms"), "<=", 100),
    Check("feed_idle", "idle clients held by one process", _field("feed_idle", "held"), ">=", 1000),
    Check(
        "feed_fanout",
        "p99 ms from commit, each client",
        _field("feed_fanout", "p99_ms"),
        "<=",
        250,
    ),
    Check(
        "feed_delivery",
        "p99 ms from the POST's answer",
        _field("feed_delivery", "p99_ms"),
        "<=",
        1000,
    ),
    Check("feed_rss", "kB RSS per idle client", _field("feed_rss", "kb_per_client"), "<=", 50),
    Check(
        "read_hot_feed",
        "req/s ÷ read_hot_no_feed",
        _ratio("read_hot_feed", "read_hot_no_feed"),
        ">=",
        0.9,
    ),
    Check("rss", "after ÷ idle, max of processes", _field("rss", "max_ratio"), "<=", 1.5),
)

HEADER = ("figure", "req/s", "p50 ms", "p99 ms", "checked", "what", "target", "met", "notes")
NUMBERS = ("req_per_s", "p50_ms", "p99_ms")


def table(figures, checks):
    """The one table, as text: a row per figure and per further check."""
    rows = []
    for name in ORDER:
        figure = figures.get(name)
        numbers = [_number(figure, key) for key in NUMBERS]
        rows += _rows(
            name, numbers, [c for c in checks if c["figure"] == name], _notes(name, figure)
        )
    for name, process in figures.get("rss", {}).get("processes", {}).items():
        sizes = f"{process['idle_mb']:.0f} → {process['after_mb']:.0f} MB"
        rows.append(
            [f"rss {name}", "", "", "", f"{process['ratio']:.2f}", "after ÷ idle", "", "", sizes]
        )
    rows += _rows("rss", ["", "", ""], [c for c in checks if c["figure"] == "rss"], "")
    widths = [max(len(row[i]) for row in [HEADER, *rows]) for i in range(len(HEADER))]

    def line(cells):
        # Numbers (columns 1-4) to the right, text to the left.
        return "  ".join(
            cell.rjust(width) if 1 <= i <= 4 else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([line(HEADER), line(["-" * w for w in widths]), *map(line, rows)])


def _rows(name, numbers, checks, notes):
    """The figure's numbers with its first check; a further row per further check."""
    if not checks:
        return [[name, *numbers, "", "", "", "", notes]]
    rows = []
    for i, check in enumerate(checks):
        value = _value(check["value"])
        target = f"{'≥' if check['op'] == '>=' else '≤'} {check['target']:g}" if check["op"] else ""
        met = {True: "yes", False: "NO", None: ""}[check["met"]]
        if i == 0:
            rows.append([name, *numbers, value, check["what"], target, met, notes])
        else:
            rows.append(["", "", "", "", value, check["what"], target, met, ""])
    return rows


def _value(value):
    if value is None:
        return "n/a"
    return f"{value:,}" if isinstance(value, int) else f"{value:.2f}"


def _number(figure, key):
    if not figure:
        return "n/a"
    if figure.get(key) is None:
        return ""
    return f"{figure[key]:.0f}" if key == "req_per_s" else f"{figure[key]:.1f}"


def _notes(name, figure):
    """What the row's numbers need said with them: errors, splits, mails."""
    if not figure:
        return ""
    notes = []
    if figure.get("errors"):
        notes.append("errors: " + ", ".join(f"{k} {v}" for k, v in figure["errors"].items()))
    runs = figure.get("runs") or [{}]
    if "connections_per_copy" in runs[0]:
        split = [" + ".join(map(str, run["connections_per_copy"].values())) for run in runs]
        notes.append(f"connections per copy: {', '.join(split)}")
    if name == "list_deep":
        first, now = figure["first_page"]["p50_ms"], figure["first_page_now"]["p50_ms"]
        notes.append(f"first page p50: {first:.1f} ms at 1,000 rows, {now:.1f} ms now")
    if name in ("search", "search_common"):
        plan = figure["plan"]
        # The scans without their timings: the JSON has those.
        scans = [scan.split(" (")[0] for scan in plan.get("scans", [])]
        ranked = (
            f" (the newest {figure['max_matches']:,} ranked)" if "max_matches" in figure else ""
        )
        notes.append(
            f"{figure['matches']} found of {figure['rows_with_word']:,} rows with the word"
            f"{ranked}; read_cold p50 {figure['read_cold']['p50_ms']:.1f} ms; "
            f"plan: {', '.join(scans) if 'scans' in plan else plan['error']}"
        )
    if name == "feed_idle":
        rounds = figure["rounds"]
        held = ", ".join(str(one["held"]) for one in rounds)
        refused = sum(one["503"] for one in rounds)
        failed = sum(one["failed"] for one in rounds)
        notes.append(
            f"{figure['process']} (pid {figure['pid']}), alone on --feed-port; "
            f"held per round: {held}; 503: {refused}, failed: {failed}; "
            f"opened in {max(one['open_s'] for one in rounds):.1f} s at most"
        )
    if name == "feed_fanout":
        notes.append(
            f"{figure['changes']} changes to each of {figure['clients']} clients, "
            f"{figure['missing']} messages missing; the bench's reader stamps "
            f"{figure['reader_slowest_pass_ms']:.0f} ms late at most"
        )
    if name == "feed_delivery":
        notes.append(
            f"one client, {figure['count']} changes, "
            f"{figure['before_answer']} before the POST's answer (as 0)"
        )
    if name == "feed_rss":
        notes.append(
            f"gateway_feed {figure['before_mb']:.1f} → {figure['with_mb']:.1f} MB "
            f"with {figure['clients']} clients, {figure['after_mb']:.1f} MB at the end"
        )
    if name == "read_hot_feed":
        notes.append("gateway_feed with feed_idle's clients, in turn with read_hot_no_feed")
    if name == "write":
        notes.append(f"{figure['articles']} articles, {figure['missing_mails']} mails missing")
    if name == "notification_lag":
        notes.append(f"{figure['rate_per_s']:.1f}/s sent, {figure['missing_mails']} mails missing")
    if name == "staleness":
        split = " + ".join(map(str, figure["connections_per_copy"].values()))
        notes.append(f"{figure['trials']} trials, connections per copy: {split}")
        if figure["timed_out"]:
            notes.append(f"{figure['timed_out']} never saw the new version")
    return "; ".join(notes)


def render(results, json_path):
    """The table with a line above (the machine, wrk) and one below (where the JSON is)."""
    machine, settings = results["machine"], results["settings"]
    minutes, seconds = divmod(round(results["wall_seconds"]), 60)
    return "\n".join(
        [
            "",
            f"make bench, {results['started']}: {machine['cpu']} ({machine['cores']} cores, load "
            f"{machine['load_average_start']:.1f} at the start, {machine['load_average_end']:.1f} "
            f"at the end); {settings['wrk']}, medians of {settings['rounds']} round(s)",
            "",
            table(results["figures"], results["checks"]),
            "",
            f"{json_path.relative_to(ROOT)}; wall time {minutes} min {seconds} s, of which "
            f"{results['seeding']['seconds']:.0f} s seeding {results['seeding']['rows']:,} rows",
        ]
    )


def machine(wrk_path, articles_url, amqp_uri):
    """What the figures were measured on."""
    info = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "load_average_end": os.getloadavg()[0],
        "kernel": platform.release(),
        "python": platform.python_version(),
        "nameko": version("nameko"),
        "eventlet": version("eventlet"),
        "wrk": _first_line([wrk_path, "-v"]),
        "git_commit": _git_commit(),
    }
    engine = make_engine(articles_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            info["postgresql"] = conn.execute(text("SHOW server_version")).scalar()
    finally:
        engine.dispose()
    with Connection(amqp_uri) as conn:
        conn.connect()
        info["rabbitmq"] = conn.connection.server_properties.get("version", "?")
    return info


def _cpu_model():
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


def _first_line(command):
    result = subprocess.run(command, capture_output=True, text=True)
    return (result.stdout or result.stderr).strip().splitlines()[0]


def _git_commit():
    def git(*args):
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout

    commit = git("rev-parse", "HEAD").strip() or "?"
    return commit + (" (with uncommitted changes)" if git("status", "--porcelain").strip() else "")


def write_json(results):
    """``bench/results/<UTC timestamp>.json`` and ``latest.json``; returns the first."""
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    text_ = json.dumps(results, indent=2, ensure_ascii=False) + "\n"
    path = RESULTS_DIR / f"{stamp}.json"
    path.write_text(text_)
    (RESULTS_DIR / "latest.json").write_text(text_)
    return path
