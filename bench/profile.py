"""``make profile`` (``python -m bench.profile``): where a cold read, an
empty RPC and a write spend their CPU, process by process.

    make profile                                  # about 2 minutes on 2 cores
    make profile PROFILE_ARGS="--figures write --seconds 10"

It starts the bench's own stack (``make bench``'s, with fewer rows) and
loads one figure at a time with wrk, twice:

- once bare, counting each process's CPU (``/proc/<pid>/stat``) over the
  run: the services by name, and RabbitMQ, PostgreSQL (all its processes)
  and wrk by program: **µs of CPU per request** for each;
- once with ``py-spy record`` sampling every Python service: each one's
  samples grouped by what runs (the package of the innermost frame that is
  not the standard library's, and our own code by its top-level folder),
  and the functions its samples were in. py-spy comes with ``make
  install`` (requirements-dev.txt); it needs the right to ptrace the
  services: root, or ``kernel.yama.ptrace_scope=0``.

py-spy samples a thread that waits for the CPU as if it ran: on a busy
machine, a process preempted just after a ``send`` wakes its peer shows that
time in ``send``. The CPU figures are the truth; the samples say where,
roughly (``--alone`` keeps a service on a CPU of its own while sampled).

The table goes to stdout, the JSON (and each process's collapsed stacks, for
a flame graph: ``flamegraph.pl`` or speedscope) to ``bench/results/profile/``.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections import Counter, defaultdict
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from servicekit.config import ROOT, load_config

from . import load, report
from .__main__ import Bench, Progress, check_reachable, cleanup_at_exit
from .infra import CannotRun, refuse_busy_ports

FIGURES = ("ceiling", "rpc_echo", "read_cold", "write")
OUT_DIR = report.RESULTS_DIR / "profile"
SAMPLE_RATE = 250  # py-spy samples a second: enough, and it costs the services little
MIN_SAMPLES = 50  # fewer (an idle service's), and the table leaves the process out
PROGRAMS = {"beam.smp": "rabbitmq", "postgres": "postgresql", "wrk": "wrk"}
TICKS = os.sysconf("SC_CLK_TCK")
SITE = f"{os.sep}site-packages{os.sep}"
IDLE_FRAMES = ("Hub.do_poll ", "Hub.wait ")
# Parts named for what they do rather than by package.
PARTS = (
    ("eventlet/greenio", "socket I/O"),  # the system calls, and the wait for the CPU after a send
    ("eventlet/hubs", "eventlet hub"),
    ("eventlet/support/psycopg2_patcher", "waiting for PostgreSQL"),
)


def parse_args():
    parser = argparse.ArgumentParser(
        prog="python -m bench.profile", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--figures", nargs="+", choices=FIGURES, default=list(FIGURES))
    parser.add_argument("--seconds", type=int, default=8, help="length of each wrk run")
    parser.add_argument("--connections", type=int, default=20, help="wrk connections")
    parser.add_argument("--top", type=int, default=8, help="functions listed a process")
    parser.add_argument(
        "--alone",
        nargs="+",
        default=(),
        metavar="SERVICE",
        help="while py-spy samples, run these services on the last CPU and everything else on"
        " the others, so that a sample is never time spent waiting for the CPU",
    )
    parser.add_argument("--port", type=int, default=8180)
    parser.add_argument("--cold-port", type=int, default=8181)
    parser.add_argument("--feed-port", type=int, default=8182)
    parser.add_argument("--rows", type=int, default=102_000, help="articles in the stack")
    parser.add_argument(
        "--articles-copies",
        type=int,
        default=1,
        help="articles service processes (1 in make bench)",
    )
    return parser.parse_args()


def main():
    args = parse_args()
    py_spy = shutil.which("py-spy") or shutil.which("py-spy", path=Path(sys.executable).parent)
    if not py_spy:
        print("profile: py-spy is not installed: make install", file=sys.stderr)
        return 1
    bench_args = argparse.Namespace(
        **vars(args), rounds=1, threads=2, write_seconds=args.seconds, lag_rate=0, lag_seconds=0
    )
    progress = Progress()
    try:
        results = Profile(bench_args, progress, py_spy).run()
    except CannotRun as exc:
        print(f"profile: cannot run the stack: {exc}", file=sys.stderr)
        return 1
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "latest.json").write_text(json.dumps(results, indent=2))
    print(render(results, args.top))
    return 0


class Profile(Bench):
    def __init__(self, args, progress, py_spy):
        super().__init__(args, progress)
        self.py_spy = py_spy

    def run(self):
        args = self.args
        refuse_busy_ports(args.port, args.cold_port, args.feed_port)
        config = load_config()
        check_reachable(config)
        started = datetime.now(UTC).isoformat(timespec="seconds")
        with cleanup_at_exit() as cleanup:
            self.start_stack(cleanup, config)
            for copy in range(2, args.articles_copies + 1):
                self.services.start(f"articles_{copy}", "bench.stack:BenchArticles")
            self.progress(f"growing the articles to {args.rows:,} rows")
            self.articles.grow_to(args.rows)
            self.pick_articles()
            figures = {name: self.profile(name) for name in args.figures}
        return {"started": started, "settings": vars(args), "figures": figures}

    def load(self, name, seconds=None):
        """One wrk run of figure ``name``: make bench's target for it (the
        ids of ``read_cold`` from the start of its file), or ``write``'s POSTs."""
        if name == "write":
            url, args = f"{self.cached_url}/api/articles", (self.token, "bench-profile")
            return load.run(self.wrk, url, "post.lua", args, seconds=seconds)
        return load.run_target(self.wrk, self.wrk_targets()[name], 0, 1, seconds=seconds)

    def profile(self, name):
        self.progress(f"{name}: CPU of each process over {self.args.seconds} s")
        self.load(name, seconds=1)  # warm-up
        before = cpu_seconds(self.services)
        run = self.load(name)
        after = cpu_seconds(self.services)
        per_request = 1e6 / run["requests"]
        cpu_us, system_us = {}, {}
        for key, (user, system) in after.items():
            user_before, system_before = before.get(key, (0.0, 0.0))
            spent = (user - user_before + system - system_before) * per_request
            if spent > 0:
                cpu_us[key] = spent
                system_us[key] = (system - system_before) * per_request

        self.progress(f"{name}: py-spy on every service")
        recorders = {
            process.name: self.record(name, process) for process in self.services.processes.values()
        }
        with pinned([self.services[alone].pid for alone in self.args.alone]):
            self.load(name)
        stacks = {}
        for process_name, (recorder, path) in recorders.items():
            _, err = recorder.communicate(timeout=60)
            if recorder.returncode != 0:  # not allowed to ptrace it, say: said once, not a failure
                why = (err.strip().splitlines() or ["no reason given"])[-1]
                self.progress(f"{name}: py-spy could not sample {process_name}: {why}")
            stacks[process_name] = summarise(path.read_text()) if path.exists() else None
        return {
            "req_per_s": run["req_per_s"],
            "p50_ms": run["p50_ms"],
            "errors": run["errors"],
            "cpu_us_per_request": dict(sorted(cpu_us.items(), key=lambda kv: -kv[1])),
            "system_us_per_request": system_us,
            "stacks": {key: value for key, value in stacks.items() if value},
        }

    def record(self, figure, process):
        path = OUT_DIR / f"{figure}.{process.name}.collapsed"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        command = [self.py_spy, "record", "--pid", str(process.pid), "--format", "raw"]
        command += ["--rate", str(SAMPLE_RATE), "--duration", str(self.args.seconds)]
        command += ["--nonblocking", "--full-filenames", "--output", str(path)]
        recorder = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        return recorder, path


@contextmanager
def pinned(alone):
    """Processes ``alone`` on the last CPU, every other process (this one
    too, and so wrk) on the others, until the block ends."""
    if not alone:
        yield
        return
    cpus = sorted(os.sched_getaffinity(0))
    last, others = {cpus[-1]}, set(cpus[:-1])
    if not others:
        raise CannotRun("--alone needs two CPUs at least")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        _set_affinity(int(pid), last if int(pid) in alone else others)
    try:
        yield
    finally:
        for pid in filter(str.isdigit, os.listdir("/proc")):
            _set_affinity(int(pid), set(cpus))


def _set_affinity(pid, cpus):
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            os.sched_setaffinity(int(task), cpus)
    except OSError:  # a kernel thread, or the process ended
        pass


def cpu_seconds(services):
    """(user, system) CPU seconds so far of each service (by name) and of
    each program of ``PROGRAMS`` (every process of it, summed)."""
    spent = {name: _process_cpu(process.pid) for name, process in services.processes.items()}
    programs = defaultdict(lambda: (0.0, 0.0))
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/comm") as comm:
                program = PROGRAMS.get(comm.read().strip())
            if program:
                user, system = _process_cpu(pid)
                programs[program] = (programs[program][0] + user, programs[program][1] + system)
        except OSError:  # ended meanwhile
            continue
    return spent | programs


def _process_cpu(pid):
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICKS, int(fields[12]) / TICKS  # utime, stime


def summarise(collapsed):
    """A process's samples grouped by what ran, and its heaviest functions."""
    by_part, inclusive, itself, total, idle = Counter(), Counter(), Counter(), 0, 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        count = int(count)
        frames = stack.split(";")
        if frames[-1].startswith(IDLE_FRAMES):  # eventlet's hub waiting for work
            idle += count
            continue
        total += count
        itself[frame_function(frames[-1])] += count
        by_part[part_of(frames)] += count
        for function in {frame_function(frame) for frame in frames}:
            inclusive[function] += count
    if not total:
        return None
    return {
        "samples": total,
        "idle_samples": idle,
        "parts": {part: count / total for part, count in by_part.most_common()},
        "self": {name: count / total for name, count in itself.most_common(60)},
        "inclusive": {name: count / total for name, count in inclusive.most_common(200)},
    }


def part_of(frames):
    """What the innermost frame outside the standard library belongs to: a
    third-party package by name (or by what it does, ``PARTS``), our code by
    its top-level folder."""
    for frame in reversed(frames):
        path = frame_path(frame)
        if path is None:
            continue
        if SITE in path:
            inside = path.split(SITE, 1)[1]
            for prefix, name in PARTS:
                if inside.startswith(prefix):
                    return name
            return inside.split(os.sep, 1)[0].removesuffix(".py")
        if path.startswith(str(ROOT)):
            return "ours: " + Path(path).relative_to(ROOT).parts[0]
    return "python"


def frame_path(frame):
    # "function (path:line)"
    if not frame.endswith(")") or " (" not in frame:
        return None
    return frame.rsplit(" (", 1)[1][:-1].rsplit(":", 1)[0]


def frame_function(frame):
    """``function (file)``, the file shortened to its package path."""
    name, _, where = frame.partition(" (")
    path = where.rsplit(":", 1)[0]
    if SITE in path:
        path = path.split(SITE, 1)[1]
    elif path.startswith(str(ROOT)):
        path = str(Path(path).relative_to(ROOT))
    else:
        path = Path(path).name
    return f"{name} ({path})"


def render(results, top):
    lines = [f"make profile, {results['started']}"]
    for name, figure in results["figures"].items():
        cpu = figure["cpu_us_per_request"]
        total = sum(value for key, value in cpu.items() if key != "wrk")
        lines.append("")
        lines.append(
            f"## {name}: {figure['req_per_s']:,.0f} req/s, p50 {figure['p50_ms']:.1f} ms;"
            f" {total:,.0f} µs of CPU a request without wrk"
        )
        system = figure["system_us_per_request"]
        lines.append(
            "  µs of CPU a request (of it in the kernel): "
            + ", ".join(
                f"{key} {value:,.0f} ({system[key]:,.0f})"
                for key, value in cpu.items()
                if value >= 10
            )
        )
        for process, stacks in figure["stacks"].items():
            if stacks["samples"] < MIN_SAMPLES:
                continue  # a process the figure barely used: its few samples say nothing
            parts = ", ".join(
                f"{part} {share:.0%}" for part, share in stacks["parts"].items() if share >= 0.02
            )
            lines.append(f"  {process} ({stacks['samples']} samples): {parts}")
            for function, share in list(stacks["self"].items())[:top]:
                lines.append(f"      {share:4.0%} {function}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
