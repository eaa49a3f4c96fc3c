"""The ZeroMQ side of the protocol: we listen, Batsim connects and asks, we answer.

Batsim sends a message (REQ) and blocks until the reply; the decision process (REP) must
answer every message exactly once. Waiting for Batsim never blocks forever: ``receive``
polls in short slices, asks the peer's ``check`` (is the batsim process still alive?) between
slices, and gives up with a :class:`BatsimError` after ``timeout_s`` seconds of silence.
"""

from __future__ import annotations

import time
from typing import Callable

from hdeeprm.backends.batsim.messages import Message, decode, encode
from hdeeprm.common.errors import BatsimError

_POLL_SLICE_MS = 200


class Transport:
    """A REP socket bound to a free local TCP port (``endpoint`` is what Batsim's ``-s``
    needs)."""

    def __init__(self, timeout_s: float = 60.0, host: str = "127.0.0.1",
                 transcript: str | None = None):
        import zmq  # optional dependency: the batsim extra

        if timeout_s <= 0:
            raise BatsimError(f"timeout must be > 0 s, got {timeout_s}")
        self.timeout_s = float(timeout_s)
        self._context = zmq.Context()
        self._socket = self._context.socket(zmq.REP)
        self._socket.setsockopt(zmq.LINGER, 0)
        port = self._socket.bind_to_random_port(f"tcp://{host}")
        self.endpoint = f"tcp://{host}:{port}"
        self._poller = zmq.Poller()
        self._poller.register(self._socket, zmq.POLLIN)
        self._awaiting_reply = False
        self.messages_received = 0
        # Every message both ways, one JSON line each ({"from": ..., "msg": ...}): the
        # transcript format `hdeeprm replay` reads, so a run can be replayed on the engine.
        self._transcript = open(transcript, "wb") if transcript is not None else None

    def receive(self, check: Callable[[], None] | None = None) -> Message:
        """The next message from Batsim. ``check`` runs every 0.2 s while waiting and may
        raise (the batsim process died)."""
        if self._awaiting_reply:
            raise BatsimError("protocol misuse: the previous Batsim message was not answered")
        deadline = time.monotonic() + self.timeout_s
        while not self._poller.poll(_POLL_SLICE_MS):
            if check is not None:
                check()
            if time.monotonic() > deadline:
                raise BatsimError(f"no message from Batsim for {self.timeout_s:g} s on "
                                  f"{self.endpoint}; it may be stuck or unable to connect "
                                  "(raise the timeout for very long simulated steps)")
        raw = self._socket.recv()
        self._awaiting_reply = True
        self.messages_received += 1
        self._record(b"batsim", raw)
        return decode(raw)

    def send(self, message: Message) -> None:
        if not self._awaiting_reply:
            raise BatsimError("protocol misuse: a reply can only answer a Batsim message")
        raw = encode(message)
        self._socket.send(raw)
        self._awaiting_reply = False
        self._record(b"scheduler", raw)

    def _record(self, sender: bytes, raw: bytes) -> None:
        if self._transcript is not None:
            self._transcript.write(b'{"from": "' + sender + b'", "msg": ' + raw.strip() + b"}\n")

    @property
    def awaiting_reply(self) -> bool:
        return self._awaiting_reply

    def close(self) -> None:
        if self._transcript is not None:
            self._transcript.close()
            self._transcript = None
        if not self._socket.closed:
            self._socket.close(linger=0)
            self._context.term()

    def __enter__(self) -> "Transport":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
