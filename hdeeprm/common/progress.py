"""The one-line progress bar of training, evaluation, sweeps and cross-validation."""

from __future__ import annotations

import sys
import time

# Ours, not tqdm: one small class rather than a new dependency, and the line (counts, reward) tests read.


class Progress:
    """One line on stderr, redrawn in place: a bar, items finished out of ``total``, the last
    episode's reward (``update``) or the counts done, running and failed (``draw``), time
    elapsed and time left. Drawn only on a terminal unless ``enabled`` says otherwise; the
    line ends when every item is finished or at ``close``.

    ``skipped`` items (finished by an earlier run) count as finished but not in the rate."""

    WIDTH = 24

    def __init__(self, total: int, label: str, stream=None, enabled: bool | None = None, *, skipped: int = 0):
        stream = sys.stderr if stream is None else stream  # looked up now: it may be replaced
        self.total, self.label, self.stream, self.skipped = total, label, stream, skipped
        self.enabled = stream.isatty() if enabled is None else enabled
        self.done = self.failed = self.running = 0
        self.reward: float | None = None
        self.start = time.perf_counter()
        self._ended = False

    def update(self, record) -> None:
        """One more episode done (``record.reward``: its return)."""
        self.done += 1
        self.reward = record.reward
        self.draw()

    def draw(self) -> None:
        if not self.enabled or self._ended:
            return
        finished = self.skipped + self.done + self.failed
        filled = int(self.WIDTH * finished / max(self.total, 1))
        elapsed = time.perf_counter() - self.start
        ran = self.done + self.failed
        left = f"{elapsed / ran * (self.total - finished):.0f}s left" if ran else "?"
        if self.reward is not None:
            detail = f"reward {self.reward:.4g}"
        else:
            detail = (f"({self.done} done, {self.running} running, {self.failed} failed"
                      f"{f', {self.skipped} earlier' if self.skipped else ''})")
        self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (self.WIDTH - filled)}] {finished}/{self.total} "
                          f"{detail} {elapsed:.0f}s elapsed, {left} ")
        if finished >= self.total:
            self.close()
        else:
            self.stream.flush()

    def close(self) -> None:
        """End the line (once), e.g. when stopped early."""
        if self.enabled and not self._ended:
            self._ended = True
            self.stream.write("\n")
            self.stream.flush()
