"""Many independent tasks at once: a local process pool or a Ray cluster, behind one interface.

``hdeeprm sweep`` runs one task per grid cell, training with rollout workers one task per
episode. A task is ``fn(item)``: ``fn`` a module-level function (workers import it by
name), ``item`` picklable data. ``fn`` must derive everything, its seeds included, from
``item`` alone, never from the worker it runs on or from what ran before, so that a result
does not depend on which worker ran the task, on how many workers there are, or on the
order in which tasks finish. Workers may cache what is expensive to rebuild and does not
change results (an environment built from a frozen configuration).

  LocalEngine(workers)           1 worker: tasks run in the calling process, one after the
                                 other; more: a ProcessPoolExecutor of ``workers`` processes
                                 started with 'spawn' (no Ray needed)
  RayEngine(workers, address)    ``workers`` Ray actors (1 CPU each) on a local Ray instance
                                 (started for the engine and stopped by ``close``) or on the
                                 cluster at ``address``; needs ``pip install 'hdeeprm[ray]'``

Both keep at most ``workers`` tasks in flight, keep their workers (and the workers' caches)
from one call to the next until ``close()``, and return a task's exception as that task's
result instead of raising it, so that one failing task stops nothing else. A worker process
that dies (killed, out of memory) fails the tasks it was running and is replaced.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
import traceback
from collections import deque
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

from hdeeprm.common.errors import ConfigError

ENGINES = ("local", "ray")
WORKER_DIED = "the worker process running this task died (killed, out of memory, or a crash in native code)"


@dataclass(frozen=True)
class TaskResult:
    """The outcome of ``fn(items[index])``: its value, or the error it raised (``error`` is
    ``"ExceptionType: message"``, ``traceback`` the worker's traceback)."""

    index: int
    ok: bool
    value: Any = None
    error: str | None = None
    traceback: str | None = None
    seconds: float = 0.0


class TaskError(RuntimeError):
    """A task of :meth:`WorkerEngine.map` failed; the message holds the worker's traceback."""


def call_task(fn: Callable[[Any], Any], item: Any) -> tuple[bool, Any, str | None, str | None, float]:
    """Run one task in a worker: (ok, value, error, traceback, seconds). Exceptions are
    returned, not raised, so that they travel back as data on every engine."""
    t0 = time.perf_counter()
    try:
        value = fn(item)
    except Exception as e:
        return False, None, f"{type(e).__name__}: {e}", traceback.format_exc(), time.perf_counter() - t0
    return True, value, None, None, time.perf_counter() - t0


def init_worker() -> None:
    """Start of a local worker process: compute with one thread (unless told otherwise), since
    the workers share the machine's cores; several processes' idle OpenMP threads spinning
    against each other would slow everything down (Ray does the same for its actors)."""
    _exit_with_parent()
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(name, "1")
    if "torch" in sys.modules and os.environ["OMP_NUM_THREADS"].isdigit():  # loaded: too late for the variables
        sys.modules["torch"].set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


def _exit_with_parent() -> None:
    """Linux: the kernel kills this worker when the process that started it dies, even by
    kill -9, so that no worker outlives a killed sweep or training."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _failed(index: int, error: str, tb: str | None = None) -> TaskResult:
    return TaskResult(index, False, None, error, tb)


class WorkerEngine:
    """What LocalEngine and RayEngine share: ``run`` (results as they finish), ``map``
    (values in item order), ``close``. ``in_flight``: tasks running now."""

    name = "?"
    workers = 1
    in_flight = 0

    def run(self, fn: Callable[[Any], Any], items: Iterable[Any],
            on_start: Callable[[int], None] | None = None) -> Iterator[TaskResult]:
        """``fn(item)`` for every item, at most ``workers`` at a time; yields one TaskResult
        per item in the order they finish. ``on_start(index)`` is called as each is sent."""
        raise NotImplementedError

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
        """The values of ``fn(item)`` in item order; TaskError at the first failed task."""
        items = list(items)
        values: list[Any] = [None] * len(items)
        results = self.run(fn, items)
        try:
            for result in results:
                if not result.ok:
                    raise TaskError(f"task {result.index} failed: {result.error}\n{result.traceback or ''}".rstrip())
                values[result.index] = result.value
        finally:
            results.close()
        return values

    def close(self) -> None:
        """Stop the workers (a closed engine starts new ones if used again)."""

    def __enter__(self) -> "WorkerEngine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def describe(self) -> str:
        return f"{self.name} engine, {self.workers} worker{'s' if self.workers != 1 else ''}"


class LocalEngine(WorkerEngine):
    """Tasks in the calling process (1 worker) or in a pool of worker processes."""

    name = "local"

    def __init__(self, workers: int = 1, start_method: str = "spawn"):
        if not isinstance(workers, int) or workers < 1:
            raise ConfigError(f"workers {workers!r}: expected a positive integer")
        self.workers = workers
        self.start_method = start_method
        self._executor: ProcessPoolExecutor | None = None
        self.in_flight = 0

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            # 'spawn': workers start from a fresh interpreter, never from a copy of this
            # process's state (threads, torch or numba internals, random generators).
            self._executor = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context(self.start_method),
                                                 initializer=init_worker)
        return self._executor

    def run(self, fn, items, on_start=None) -> Iterator[TaskResult]:
        items = list(items)
        if self.workers == 1:
            for index, item in enumerate(items):
                self.in_flight = 1
                if on_start is not None:
                    on_start(index)
                outcome = call_task(fn, item)
                self.in_flight = 0
                yield TaskResult(index, *outcome)
            return
        pending = deque(enumerate(items))
        running: dict = {}  # future -> item index
        try:
            while pending or running:
                while pending and len(running) < self.workers:
                    index, item = pending.popleft()
                    running[self._pool().submit(call_task, fn, item)] = index
                    self.in_flight = len(running)
                    if on_start is not None:
                        on_start(index)
                done, _ = wait(list(running), return_when=FIRST_COMPLETED)
                broken = False
                for future in done:
                    index = running.pop(future)
                    self.in_flight = len(running)
                    try:
                        result = TaskResult(index, *future.result())
                    except BrokenProcessPool as e:
                        broken = True
                        result = _failed(index, f"{WORKER_DIED}: {e}")
                    except Exception as e:  # e.g. the value could not be pickled back
                        result = _failed(index, f"{type(e).__name__}: {e}", traceback.format_exc())
                    yield result
                if broken:
                    # A dead worker breaks the whole pool: every task in it is lost.
                    for future, index in list(running.items()):
                        del running[future]
                        self.in_flight = len(running)
                        yield _failed(index, WORKER_DIED + " (or one beside it)")
                    self._executor.shutdown(wait=False, cancel_futures=True)
                    self._executor = None
        finally:
            for future in running:
                future.cancel()
            self.in_flight = 0

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def terminate(self) -> None:
        """Stop the workers now, abandoning the tasks they run (after Ctrl-C or SIGTERM)."""
        if self._executor is not None:
            for process in list(getattr(self._executor, "_processes", {}).values()):
                process.terminate()
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None and issubclass(exc_type, KeyboardInterrupt):
            self.terminate()
        self.close()


class _RayWorker:
    """A Ray actor: one worker process that runs tasks one at a time."""

    def call(self, fn, item):
        return call_task(fn, item)


# Seconds to wait for a TCP connection to a Ray cluster's address before giving up (Ray's
# own ray.init retries for minutes when nothing listens there). HDEEPRM_RAY_CONNECT_TIMEOUT
# sets it.
RAY_CONNECT_TIMEOUT_S = 10.0


#: What a gRPC server (Ray's GCS, or its client server behind ray://) answers to an HTTP/2
#: client preface: a SETTINGS frame (frame type 4, the fourth byte of a frame header).
_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
_HTTP2_SETTINGS = 4


def _check_ray_address(address: str) -> None:
    """ConfigError unless a gRPC server, as Ray's is, answers at ``address`` (``HOST:PORT`` or
    ``ray://HOST:PORT``) within RAY_CONNECT_TIMEOUT_S seconds: given anything else, ray.init
    would retry for minutes, or for ever when the port answers but is no Ray (a web server).
    Other forms (``auto``, ``local``) are Ray's to find."""
    import socket

    text = address[len("ray://"):] if address.startswith("ray://") else address
    host, sep, port_text = text.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        return
    host = host.strip("[]")
    port = int(port_text)
    shown = address if len(address) <= 80 else address[:77] + "..."
    if not 0 < port < 65536:
        raise ConfigError(f"--address {shown}: port {port}: expected 1 to 65535")
    try:
        timeout = float(os.environ.get("HDEEPRM_RAY_CONNECT_TIMEOUT", RAY_CONNECT_TIMEOUT_S))
    except ValueError:
        timeout = RAY_CONNECT_TIMEOUT_S
    hint = "start one with 'ray start --head' or leave --address out for a local Ray"
    try:
        with socket.create_connection((host, port), timeout=timeout) as connection:
            try:
                connection.sendall(_HTTP2_PREFACE)
                answer = connection.recv(9)
            except OSError:
                answer = b""
    except OSError as e:
        reason = f"no answer within {timeout:g} s" if isinstance(e, socket.timeout) else (e.strerror or type(e).__name__)
        raise ConfigError(f"--address {shown}: no Ray cluster answers there ({reason}); {hint}") from None
    if len(answer) < 4 or answer[3] != _HTTP2_SETTINGS:
        raise ConfigError(f"--address {shown}: something answers there, but not a Ray cluster (no gRPC "
                          f"server); {hint}")


class RayEngine(WorkerEngine):
    """Tasks on ``workers`` Ray actors. Without ``address`` (and without a Ray already
    initialised in this process), a local Ray instance with ``workers`` CPUs is started and
    stopped by ``close``; with it, the cluster there is used (``auto``: the one started on
    this machine by ``ray start``). Every node must have the same hdeeprm installed and see
    the input files at the same paths."""

    name = "ray"

    def __init__(self, workers: int | None = None, address: str | None = None):
        if workers is not None and (not isinstance(workers, int) or workers < 1):
            raise ConfigError(f"workers {workers!r}: expected a positive integer")
        try:
            import ray
        except ModuleNotFoundError:
            raise ConfigError("the ray engine needs Ray: pip install -c constraints.txt -e '.[ray]'") from None
        import logging

        self._ray = ray
        self._owns = False
        if not ray.is_initialized():
            options: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING,
                                       "log_to_driver": False}
            if address:
                _check_ray_address(address)
                ray.init(address=address, **options)
            else:
                ray.init(num_cpus=workers or os.cpu_count() or 1, **options)
            self._owns = True
        self.address = address
        self.workers = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        self._actor_class = ray.remote(num_cpus=1, max_restarts=0)(_RayWorker)
        self._actors: list = []
        self.in_flight = 0

    def _new_actor(self):
        actor = self._actor_class.remote()
        self._actors.append(actor)
        return actor

    def run(self, fn, items, on_start=None) -> Iterator[TaskResult]:
        ray = self._ray
        items = list(items)
        while len(self._actors) < self.workers:
            self._new_actor()
        idle = list(self._actors)
        pending = deque(enumerate(items))
        running: dict = {}  # object ref -> (item index, actor)
        try:
            while pending or running:
                while pending and idle:
                    index, item = pending.popleft()
                    actor = idle.pop()
                    running[actor.call.remote(fn, item)] = (index, actor)
                    self.in_flight = len(running)
                    if on_start is not None:
                        on_start(index)
                done, _ = ray.wait(list(running), num_returns=1)
                for ref in done:
                    index, actor = running.pop(ref)
                    self.in_flight = len(running)
                    try:
                        result = TaskResult(index, *ray.get(ref))
                        idle.append(actor)
                    except ray.exceptions.RayActorError:
                        self._actors.remove(actor)
                        idle.append(self._new_actor())
                        result = _failed(index, WORKER_DIED)
                    except ray.exceptions.RayError as e:
                        idle.append(actor)
                        result = _failed(index, f"{type(e).__name__}: {e}")
                    yield result
        finally:
            if running:  # interrupted: the actors still busy are stopped with their tasks
                for index, actor in running.values():
                    ray.kill(actor)
                    self._actors.remove(actor)
            self.in_flight = 0

    def close(self) -> None:
        for actor in self._actors:
            self._ray.kill(actor)
        self._actors = []
        if self._owns and self._ray.is_initialized():
            self._ray.shutdown()
            self._owns = False

    def describe(self) -> str:
        where = f"cluster at {self.address}" if self.address else "local Ray instance"
        return f"ray engine ({where}), {self.workers} worker{'s' if self.workers != 1 else ''}"


def make_engine(kind: str = "local", workers: int | None = None, address: str | None = None) -> WorkerEngine:
    """The engine named ``kind`` (``local`` or ``ray``). ``workers`` None: 1 for local, the
    cluster's CPUs for Ray. ``address`` is for Ray only."""
    if kind not in ENGINES:
        raise ConfigError(f"engine {kind!r}: expected one of {', '.join(ENGINES)}")
    if kind == "local":
        if address:
            raise ConfigError("--address is for --engine ray")
        return LocalEngine(1 if workers is None else workers)
    return RayEngine(workers, address)
