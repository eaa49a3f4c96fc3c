"""The one progress bar of training, evaluation, sweeps and cross-validation."""

from __future__ import annotations

import os
import sys
import time

# Ours, not tqdm: one small class rather than a new dependency, and the line (counts, reward) tests read.

#: Seconds between progress lines when the output is not a terminal (a CI log, nohup, tee);
#: HDEEPRM_PROGRESS_SECONDS sets it.
LINE_EVERY_S = 30.0


class Progress:
    """Items finished out of ``total`` (a bar), the last episode's reward (``update``) or the
    counts done, running and failed (``draw``), time elapsed and time left.

    On a terminal, one line on stderr redrawn in place; when stderr is not a terminal (a log
    file, CI), a plain line for the first item, then every :data:`LINE_EVERY_S` seconds, and
    for the last, so that a long run is never silent. ``enabled`` True forces the redrawn
    line, False silences it. The line ends when every item is finished or at ``close``.

    Time left comes from the steady pace: the first item, which pays for one-time work such as
    compiling the kernels, is left out of the rate once a second one has finished.
    ``skipped`` items (finished by an earlier run) count as finished but not in the rate."""

    WIDTH = 24

    def __init__(self, total: int, label: str, stream=None, enabled: bool | None = None, *, skipped: int = 0):
        stream = sys.stderr if stream is None else stream  # looked up now: it may be replaced
        self.total, self.label, self.stream, self.skipped = total, label, stream, skipped
        terminal = stream.isatty()
        self.enabled = True if enabled is None else enabled
        self.in_place = terminal if enabled is None else True
        self.every_s = _line_every_s()
        self.done = self.failed = self.running = 0
        self.reward: float | None = None
        self.start = time.perf_counter()
        self._first_finished: float | None = None  # when the first item finished
        self._last_line: float | None = None
        self._ended = False

    def update(self, record) -> None:
        """One more episode done (``record.reward``: its return)."""
        self.done += 1
        self.reward = record.reward
        self.draw()

    def draw(self) -> None:
        if not self.enabled or self._ended:
            return
        now = time.perf_counter()
        finished = self.skipped + self.done + self.failed
        ran = self.done + self.failed
        if ran and self._first_finished is None:
            self._first_finished = now
        if not self.in_place:
            due = self._last_line is None or now - self._last_line >= self.every_s
            if not (finished >= self.total or (ran and due)):
                return
            self._last_line = now
        line = self._line(now, finished, ran)
        self.stream.write(f"\r{line}" if self.in_place else f"{line}\n")
        if finished >= self.total:
            self.close()
        else:
            self.stream.flush()

    def _line(self, now: float, finished: int, ran: int) -> str:
        filled = int(self.WIDTH * finished / max(self.total, 1))
        elapsed = now - self.start
        if ran >= 2:  # the steady pace, without the first item's one-time costs
            per_item = (now - self._first_finished) / (ran - 1)
        else:
            per_item = elapsed / ran if ran else None
        left = f"{per_item * (self.total - finished):.0f}s left" if per_item is not None else "?"
        if self.reward is not None:
            detail = f"reward {self.reward:.4g}"
        else:
            detail = (f"({self.done} done, {self.running} running, {self.failed} failed"
                      f"{f', {self.skipped} earlier' if self.skipped else ''})")
        return (f"{self.label} [{'#' * filled}{'.' * (self.WIDTH - filled)}] {finished}/{self.total} "
                f"{detail} {elapsed:.0f}s elapsed, {left} ")

    def close(self) -> None:
        """End the line (once), e.g. when stopped early."""
        if self.enabled and not self._ended:
            self._ended = True
            if self.in_place:
                self.stream.write("\n")
            self.stream.flush()


def _line_every_s() -> float:
    try:
        seconds = float(os.environ.get("HDEEPRM_PROGRESS_SECONDS", LINE_EVERY_S))
    except ValueError:
        return LINE_EVERY_S
    return seconds if seconds >= 0 else LINE_EVERY_S
