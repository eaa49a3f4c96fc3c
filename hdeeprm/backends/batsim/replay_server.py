"""Stand-ins for Batsim, for tests and for checking schedulers without the binary.

:func:`play` / :class:`ReplayServerThread` play Batsim's side of a recorded transcript.
It connects to the decision process like Batsim does, sends Batsim's recorded messages one
by one and checks that every reply equals the recorded one (same events, in the same order,
same data; numbers compared as numbers). It stops at the first reply that differs, since
Batsim's next recorded message would no longer follow. At the end it can copy the recorded
run's output files to the export prefix, as Batsim would have written them.

Two ways to use it:
- in-process: :class:`ReplayServerThread` is a launcher for :class:`BatsimSimulator`;
- as a fake ``batsim`` executable: ``python -m hdeeprm.backends.batsim.replay_server
  --transcript T [--outputs DIR] -- <batsim's own arguments>`` reads ``-s`` and ``-e`` from
  Batsim's command line and exits with status 3 on the first differing reply; with
  ``--engine`` instead of ``--transcript`` it answers from an embedded engine run on the
  ``-p`` and ``-w`` files it is given.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import sys
import threading
from pathlib import Path

import numpy as np

from hdeeprm.backends.batsim.messages import decode, from_json
from hdeeprm.common.errors import BatsimError
from hdeeprm.simulation.replay import read_transcript

MISMATCH_STATUS = 3


def _canonical(message: dict) -> dict:
    # Through our own types and back, so that 2 and 2.0 or key order do not matter.
    return json.loads(json.dumps(from_json(message).as_json()))


def play(transcript: str, endpoint: str, *, stop: threading.Event | None = None,
         timeout_s: float = 60.0) -> str | None:
    """Play ``transcript`` against the decision process at ``endpoint``; returns None when
    every reply matched, else a description of the first difference."""
    import zmq

    records = list(read_transcript(transcript))
    context = zmq.Context()
    socket = context.socket(zmq.REQ)
    socket.setsockopt(zmq.LINGER, 0)
    socket.connect(endpoint)
    try:
        for position, (lineno, sender, msg) in enumerate(records):
            if sender != "batsim":
                continue
            socket.send(json.dumps(msg).encode())
            waited = 0.0
            while not socket.poll(100):
                waited += 0.1
                if (stop is not None and stop.is_set()) or waited > timeout_s:
                    return f"line {lineno}: no reply to Batsim's message"
            reply = decode(socket.recv())
            expected = next(((n, m) for n, s, m in records[position + 1:] if s == "scheduler"), None)
            if expected is None:
                return f"line {lineno}: the transcript has no recorded reply here"
            got = json.loads(json.dumps(reply.as_json()))
            if got != _canonical(expected[1]):
                return (f"line {expected[0]}: the reply differs from the recorded one\n"
                        f"  recorded: {json.dumps(expected[1])[:2000]}\n"
                        f"  got:      {json.dumps(got)[:2000]}")
        return None
    finally:
        socket.close(linger=0)
        context.term()


def copy_outputs(recorded_dir: str, export_prefix: str) -> None:
    """Copy a recorded run's ``out_*.csv`` files as Batsim would write them at ``export_prefix``."""
    for path in sorted(glob.glob(os.path.join(recorded_dir, "out_*.csv"))):
        suffix = os.path.basename(path)[len("out"):]
        shutil.copyfile(path, export_prefix + suffix)


class _ThreadPeer:
    """A stand-in run in a thread of this process: called as a launcher it starts
    ``_serve(endpoint)``; as a peer it reports the thread's failure through ``check`` and
    ``finish`` (``_failure()`` says what went wrong, or None)."""

    name = "stand-in"

    def __init__(self):
        self.error: BaseException | None = None
        self.inputs = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __call__(self, inputs, endpoint: str):
        self.inputs = inputs
        self._thread = threading.Thread(target=self._run, args=(endpoint,), daemon=True)
        self._thread.start()
        return self

    def _run(self, endpoint: str) -> None:
        try:
            self._serve(endpoint)
        except BaseException as e:  # reported to the backend through check() and finish()
            self.error = e

    def _serve(self, endpoint: str) -> None:
        raise NotImplementedError

    def _failure(self) -> str | None:
        return None if self.error is None else f"the {self.name} failed: {self.error!r}"

    def check(self) -> None:
        if self._thread is not None and not self._thread.is_alive():
            raise BatsimError(self._failure() or f"the {self.name} stopped before the end of the simulation")

    def finish(self, timeout_s: float = 30.0) -> None:
        self._thread.join(timeout_s)
        if (failure := self._failure()) is not None:
            raise BatsimError(failure)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)


class ReplayServerThread(_ThreadPeer):
    """A launcher (and its peer) for :class:`BatsimSimulator` that plays a transcript in a
    thread of this process."""

    name = "replay server"

    def __init__(self, transcript: str, outputs: str | None = None, timeout_s: float = 60.0):
        super().__init__()
        self.transcript = transcript
        self.outputs = outputs
        self.timeout_s = timeout_s
        self.mismatch: str | None = None

    def _serve(self, endpoint: str) -> None:
        self.mismatch = play(self.transcript, endpoint, stop=self._stop, timeout_s=self.timeout_s)
        if self.mismatch is None and self.outputs:
            copy_outputs(self.outputs, self.inputs.export_prefix)

    def _failure(self) -> str | None:
        if self.mismatch is not None:
            return f"{self.transcript}: {self.mismatch}"
        return super()._failure()


class EngineServerThread(_ThreadPeer):
    """A launcher (and its peer) that answers like Batsim from an embedded engine, in a
    thread: it sends SIMULATION_BEGINS, then one message per decision point of the engine,
    applies the replies' decisions, and writes Batsim-style outputs at the export prefix.

    ``permute_ids`` numbers the machines in a shuffled order (``rng``), to check that a
    client takes machine ids from SIMULATION_BEGINS rather than from host names.
    """

    name = "engine server"

    def __init__(self, platform, workload, *, permute_ids: bool = False, rng=None):
        from hdeeprm.simulation.engine import Engine

        super().__init__()
        self.engine = Engine(platform, workload)
        n = platform.nb_machines
        self.batsim_of = (rng.permutation(n) if permute_ids else np.arange(n)).astype(np.int64)
        self.ours_of = np.empty_like(self.batsim_of)
        self.ours_of[self.batsim_of] = np.arange(n)

    def _serve(self, endpoint: str) -> None:
        # The conversation is the drop-in Batsim's (hdeeprm batsim), with machines renumbered.
        from hdeeprm.backends.batsim.server import Conversation, zmq_exchange
        from hdeeprm.simulation.outputs import write_outputs

        exchange, close = zmq_exchange(endpoint, stop=self._stop.is_set, poll_ms=100)
        try:
            Conversation(self.engine, batsim_of=self.batsim_of, workload_name="w0").run(exchange)
        finally:
            close()
        write_outputs(self.engine.result(), os.path.dirname(self.inputs.export_prefix))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fake-batsim", description="play Batsim's side of a transcript")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--transcript", help="recorded transcript to play")
    source.add_argument("--engine", action="store_true",
                        help="answer from an embedded engine on Batsim's -p and -w files")
    parser.add_argument("--outputs", help="recorded run whose out_*.csv files are copied at the end")
    parser.add_argument("batsim_args", nargs=argparse.REMAINDER,
                        help="-- then Batsim's command line (-s ENDPOINT -e PREFIX -E ...)")
    args = parser.parse_args(argv)
    batsim = argparse.ArgumentParser(add_help=False)
    batsim.add_argument("-p", required=True)
    batsim.add_argument("-w", required=True)
    batsim.add_argument("-e", required=True)
    batsim.add_argument("-s", required=True)
    batsim.add_argument("-E", action="store_true")
    batsim.add_argument("-q", action="store_true")
    rest = args.batsim_args[1:] if args.batsim_args[:1] == ["--"] else args.batsim_args
    options, _ = batsim.parse_known_args(rest)
    for path in (options.p, options.w):
        if not Path(path).is_file():
            print(f"fake-batsim: {path}: no such file", file=sys.stderr)
            return 1
    if not options.E:
        print("fake-batsim: energy (-E) must be on", file=sys.stderr)
        return 1
    if args.engine:
        from hdeeprm.inputs.platform import load_xml_platform
        from hdeeprm.inputs.workload import read_batsim_workload

        class _Inputs:
            export_prefix = options.e

        server = EngineServerThread(load_xml_platform(options.p), read_batsim_workload(options.w))
        server.inputs = _Inputs()
        server._run(options.s)  # in this (main) thread
        if server.error is not None:
            print(f"fake-batsim: {server.error!r}", file=sys.stderr)
            return 1
        return 0
    mismatch = play(args.transcript, options.s)
    if mismatch is not None:
        print(f"fake-batsim: {args.transcript}: {mismatch}", file=sys.stderr)
        return MISMATCH_STATUS
    if args.outputs:
        copy_outputs(args.outputs, options.e)
    return 0


if __name__ == "__main__":
    sys.exit(main())
