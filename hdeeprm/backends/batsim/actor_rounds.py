"""In which order Batsim's actors reach a point when several wake at the same simulated time.

SimGrid runs the actors that are ready at one date in rounds: in a round each runs until its
next simcall, then the maestro answers every simcall and the answered actors run in the next
round, in the order they were woken. With the energy plugin, Batsim's job actor reads the
consumed energy of its machines and then of every machine (the energy tracer), and each read
of a host whose energy was not yet brought to the current date is a simcall; a switch actor
sets a p-state (one simcall) before it computes its switching flop and again before it tells
the server that it has switched. So how many rounds an actor takes before it creates its
activity (at a job's start) or sends its message (at an end) depends on which hosts are up to
date at that date, and on what the other actors of the date updated in the earlier rounds
(src/jobs_execution.cpp execute_job_process, src/pstate.cpp and src/energy_tracer of Batsim
4.2.1; SimGrid 3.32's host-energy plugin).

:func:`rounds` plays those rounds. The drop-in Batsim (:mod:`.server`) uses it to place sleep
switches among the job completions of one message, as real Batsim orders them.
"""

from __future__ import annotations

from typing import Sequence

#: An actor that makes exactly one simcall (a switch actor setting a p-state) on these hosts.
SWITCH = "switch"


def rounds(actors: Sequence[tuple[str, Sequence[int]]], updated: set[int]) -> list[tuple[int, int]]:
    """Per actor, ``(round, rank)``: the round in which it reaches its point, and its rank among
    the actors that reach it in that round. ``actors`` are in wake order; each is
    ``("reads", hosts)`` (it reads the energy of ``hosts`` in that order, one simcall per host
    not up to date) or ``(SWITCH, hosts)`` (one simcall that brings ``hosts`` up to date).
    ``updated``: the hosts already up to date at this date (not modified)."""
    updated = set(updated)
    position = [0] * len(actors)
    result: list[tuple[int, int] | None] = [None] * len(actors)
    left = len(actors)
    round_ = 0
    while left:
        answered: set[int] = set()
        rank = 0
        for i, (kind, hosts) in enumerate(actors):
            if result[i] is not None:
                continue
            if kind == SWITCH:
                if round_ == 0:
                    answered.update(hosts)
                    continue
            else:
                k = position[i]
                while k < len(hosts) and hosts[k] in updated:
                    k += 1
                if k < len(hosts):  # a simcall: the maestro updates that host after the round
                    answered.add(hosts[k])
                    position[i] = k + 1
                    continue
            result[i] = (round_, rank)
            rank += 1
            left -= 1
        updated |= answered
        round_ += 1
    return result  # type: ignore[return-value]


def play(scripts: Sequence[Sequence[tuple]], ready: Sequence[int | None], updated: set[int]) -> list[tuple[int, int]]:
    """A general form of :func:`rounds`: actor i runs ``scripts[i]`` from round ``ready[i]``
    (None: not started until another actor spawns it; it then runs from the next round).
    Operations: ``("read", host)`` (a simcall if the host is not up to date), ``("simcall",
    hosts)`` (always one; brings ``hosts`` up to date), ``("spawn", j)`` (starts actor j next
    round) and ``("point",)``, the moment recorded. Returns each actor's point as
    ``(round, rank)`` ((-1, -1) when its script has none)."""
    updated = set(updated)
    start = list(ready)
    position = [0] * len(scripts)
    result: list[tuple[int, int]] = [(-1, -1)] * len(scripts)
    order = list(range(len(scripts)))  # the run order within a round: first ready, first run
    round_ = 0
    while any(position[i] < len(scripts[i]) for i in range(len(scripts))):
        answered: set[int] = set()
        rank = 0
        spawned: list[int] = []
        for i in list(order):
            if start[i] is None or start[i] > round_:
                continue
            script = scripts[i]
            while position[i] < len(script):
                op = script[position[i]]
                position[i] += 1
                if op[0] == "read":
                    if op[1] in updated:
                        continue
                    answered.add(op[1])
                    break
                if op[0] == "simcall":
                    answered.update(op[1])
                    break
                if op[0] == "spawn":
                    start[op[1]] = round_ + 1
                    spawned.append(op[1])
                    continue
                result[i] = (round_, rank)
                rank += 1
        order = [i for i in order if i not in spawned] + spawned
        updated |= answered
        round_ += 1
        if round_ > 100_000:  # pragma: no cover - every script ends
            raise RuntimeError("actor rounds do not end")
    return result
