"""make profile's summary of py-spy's collapsed stacks (unit: no stack runs)."""

from bench.profile import summarise
from servicekit.config import ROOT

SITE = "/venv/lib/python3.11/site-packages"


def frame(function, path, line=1):
    return f"{function} ({path}:{line})"


def stack(*frames, count):
    return ";".join(frames) + f" {count}"


def test_samples_are_grouped_by_what_ran_and_idle_ones_left_out():
    main = frame("GreenThread.main", f"{SITE}/eventlet/greenthread.py")
    ours = frame("ArticlesService.get", f"{ROOT}/articles/service.py")
    collapsed = "\n".join(
        [
            stack(main, frame("Hub.wait", f"{SITE}/eventlet/hubs/poll.py"), count=50),  # idle
            stack(
                main,
                ours,
                frame("Connection.execute", f"{SITE}/sqlalchemy/engine/base.py"),
                count=6,
            ),
            stack(
                main,
                ours,
                frame("GreenSocket._send_loop", f"{SITE}/eventlet/greenio/base.py"),
                count=3,
            ),
            stack(main, ours, frame("dumps", "/usr/lib/python3.11/json/__init__.py"), count=1),
        ]
    )
    summary = summarise(collapsed)
    assert (summary["samples"], summary["idle_samples"]) == (10, 50)
    # json is the standard library's: the innermost frame outside it is ours.
    assert summary["parts"] == {"sqlalchemy": 0.6, "socket I/O": 0.3, "ours: articles": 0.1}
    assert summary["self"]["Connection.execute (sqlalchemy/engine/base.py)"] == 0.6
    assert summary["inclusive"]["ArticlesService.get (articles/service.py)"] == 1.0


def test_nothing_but_idle_samples_is_no_summary():
    idle = stack(frame("Hub.do_poll", f"{SITE}/eventlet/hubs/epolls.py"), count=9)
    assert summarise(idle) is None
