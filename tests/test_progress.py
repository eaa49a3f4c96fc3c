"""The one progress bar (hdeeprm.common.progress) of training, evaluation, sweeps and crossval."""

import io
from types import SimpleNamespace

from hdeeprm.common.progress import Progress


def test_episodes_show_the_last_reward_and_end_the_line_at_the_total():
    stream = io.StringIO()
    bar = Progress(2, "training ppo", stream, enabled=True)
    bar.update(SimpleNamespace(reward=-1.23456))
    bar.update(SimpleNamespace(reward=2.0))
    text = stream.getvalue()
    first, last = text.split("\r")[1:]
    assert first.startswith("training ppo [############............] 1/2 reward -1.235 ")
    assert "s elapsed, " in first and first.endswith("s left ")
    assert last.startswith("training ppo [########################] 2/2 reward 2 ")
    assert text.endswith(" \n") and text.count("\n") == 1
    bar.close()  # the line has ended already
    assert stream.getvalue() == text


def test_cells_show_counts_and_earlier_ones():
    stream = io.StringIO()
    bar = Progress(4, "sweep", stream, enabled=True, skipped=1)
    bar.running = 2
    bar.draw()
    assert "1/4 (0 done, 2 running, 0 failed, 1 earlier)" in stream.getvalue()
    assert stream.getvalue().endswith("s elapsed, ? ")  # nothing ran yet: no rate
    bar.done, bar.failed, bar.running = 2, 1, 0
    bar.draw()
    last = stream.getvalue().split("\r")[-1]
    assert last.startswith("sweep [########################] 4/4 (2 done, 0 running, 1 failed, 1 earlier) ")
    assert last.endswith("s left \n")
    bar.close()
    assert stream.getvalue().count("\n") == 1


def test_close_ends_an_unfinished_line_once():
    stream = io.StringIO()
    bar = Progress(3, "crossval", stream, enabled=True)
    bar.done = 1
    bar.draw()
    bar.close()
    bar.close()
    bar.draw()  # nothing after the line ended
    assert stream.getvalue().count("\n") == 1 and stream.getvalue().endswith(" \n")
    assert "1/3 (1 done, 0 running, 0 failed)" in stream.getvalue()


def test_disabled_writes_nothing():
    off = Progress(1, "sweep", io.StringIO(), enabled=False)
    off.update(SimpleNamespace(reward=1.0))
    off.draw()
    off.close()
    assert off.stream.getvalue() == "" and off.done == 1


def test_not_a_terminal_gets_plain_lines_now_and_then(monkeypatch):
    # A CI log or nohup: the first item, then one line per interval, and the last; no \r.
    clock = [0.0]
    monkeypatch.setattr("hdeeprm.common.progress.time.perf_counter", lambda: clock[0])
    monkeypatch.setenv("HDEEPRM_PROGRESS_SECONDS", "10")
    stream = io.StringIO()
    bar = Progress(5, "evaluating", stream)
    assert bar.enabled and not bar.in_place
    for t in (60.0, 62.0, 64.0, 71.0, 73.0):  # the first item is slow (compiling), then about 4 s each
        clock[0] = t
        bar.update(SimpleNamespace(reward=1.0))
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue() and stream.getvalue().endswith(" \n")
    assert [line.split("] ")[1].split()[0] for line in lines] == ["1/5", "4/5", "5/5"]
    # time left from the steady pace (11 s for 3 items after the first), not from the first item's 60 s
    assert lines[1].endswith("71s elapsed, 4s left ")
    bar.close()
    assert len(stream.getvalue().splitlines()) == 3


def test_there_is_one_progress_bar():
    import re
    from pathlib import Path

    package = Path(__file__).resolve().parent.parent / "hdeeprm"
    bars = [str(path.relative_to(package)) for path in package.rglob("*.py")
            if re.search(r"^class \w*Progress\b", path.read_text(), re.M)]
    assert bars == ["common/progress.py"]
