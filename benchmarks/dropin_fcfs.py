#!/usr/bin/env python
"""A Batsim scheduler for the benchmark's drop-in section: first come, first served, in pure
pyzmq, as a group with an existing Batsim scheduler would have it (no hdeeprm import).

    python benchmarks/dropin_fcfs.py tcp://127.0.0.1:PORT

It binds a REP socket, answers each of Batsim's messages with EXECUTE_JOB for the jobs at the
head of the queue that fit on the free machines (lowest ids first), and stops after
SIMULATION_ENDS. The same decisions whoever simulates, so the outputs must be the same. At
the end it prints ``busy_seconds S``: the time it spent between receiving each message and
sending its reply (its own work, the same whichever simulator it talks to).
"""

import heapq
import json
import sys
import time

import zmq


def machines(intervals: str):
    for part in intervals.split():
        lo, _, hi = part.partition("-")
        yield from range(int(lo), int(hi or lo) + 1)


def main(endpoint: str) -> None:
    socket = zmq.Context().socket(zmq.REP)
    socket.bind(endpoint)
    free: list[int] = []  # a heap: the lowest free machine ids first
    queue: list[str] = []
    size: dict[str, int] = {}
    head = 0
    busy = 0.0
    while True:
        raw = socket.recv()
        received = time.perf_counter()
        msg = json.loads(raw)
        now, out = msg["now"], []
        for event in msg["events"]:
            kind, data = event["type"], event["data"]
            if kind == "SIMULATION_BEGINS":
                free = list(range(data["nb_compute_resources"]))
            elif kind == "JOB_SUBMITTED":
                queue.append(data["job_id"])
                size[data["job_id"]] = data["job"]["res"]
            elif kind == "JOB_COMPLETED":
                for m in machines(data["alloc"]):
                    heapq.heappush(free, m)
        while head < len(queue) and size[queue[head]] <= len(free):
            job = queue[head]
            head += 1
            alloc = sorted(heapq.heappop(free) for _ in range(size[job]))
            out.append({"timestamp": now, "type": "EXECUTE_JOB",
                        "data": {"job_id": job, "alloc": " ".join(map(str, alloc))}})
        socket.send_string(json.dumps({"now": now, "events": out}))
        busy += time.perf_counter() - received
        if msg["events"] and msg["events"][-1]["type"] == "SIMULATION_ENDS":
            print(f"busy_seconds {busy:.6f}", flush=True)
            break


if __name__ == "__main__":
    main(sys.argv[1])
