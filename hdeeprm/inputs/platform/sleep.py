"""Batsim's sleep p-states: which p-states of a host are sleep states and which are the
virtual p-states that simulate switching it off and on.

Batsim 4.2.1 reads them from the host property ``sleep_pstates`` (src/machines.cpp,
Machines::create_machines): a comma list of ``sleep:off:on`` triplets, each naming a sleep
p-state, the virtual p-state the host passes through to reach it (switch-off) and the one it
passes through to leave it (switch-on). Every other p-state is a computation p-state. A
switch computes 1 flop in the virtual p-state (src/pstate.cpp), so it lasts 1 / speed of that
p-state, and the host draws that p-state's wattage meanwhile.

The table is kept beside the :class:`Platform` (an attribute set on the frozen instance, read
through :func:`sleep_states`), so that platforms without the property are untouched.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# A p-state's type, as Batsim names them (src/pstate.hpp PStateType).
COMPUTATION, SLEEP, VIRTUAL = 0, 1, 2

SLEEP_PROPERTY = "sleep_pstates"
_ATTRIBUTE = "_sleep_states"


@dataclass(frozen=True, eq=False)
class SleepStates:
    """Per host h and p-state p: ``kind[h, p]`` (COMPUTATION, SLEEP or VIRTUAL; -1 beyond the
    host's p-states); for a sleep p-state p, ``switch_off[h, p]`` and ``switch_on[h, p]`` its
    virtual p-states (-1 elsewhere). ``triplets[h]`` is the host's property as read."""

    kind: np.ndarray
    switch_off: np.ndarray
    switch_on: np.ndarray
    triplets: tuple[tuple[tuple[int, int, int], ...], ...]

    def __post_init__(self):
        for name in ("kind", "switch_off", "switch_on"):
            array = np.array(getattr(self, name), dtype=np.int64)
            array.setflags(write=False)
            object.__setattr__(self, name, array)

    def first_sleep_pstate(self) -> np.ndarray:
        """Per host, the first sleep p-state it declares (-1: none): where the shutdown policy
        and HeteroEnv's power actions send an idle machine."""
        is_sleep = self.kind == SLEEP
        return np.where(is_sleep.any(axis=1), is_sleep.argmax(axis=1), -1).astype(np.int64)

    def property_value(self, host: int) -> str | None:
        """The ``sleep_pstates`` value Batsim reads for ``host`` (None: the host has none)."""
        triplets = self.triplets[host]
        return ",".join(f"{s}:{off}:{on}" for s, off, on in triplets) if triplets else None


def parse_sleep_property(text: str, nb_pstates: int) -> tuple[tuple[int, int, int], ...]:
    """``"3:4:5"`` or ``"3:4:5,6:7:8"`` -> ((sleep, off, on), ...); ValueError on a malformed
    value, a p-state out of range or a p-state given two roles (Batsim's checks)."""
    triplets = []
    roles: dict[int, str] = {}
    for part in (p for p in text.split(",") if p.strip()):
        fields = [f.strip() for f in part.split(":") if f.strip()]
        if len(fields) != 3:
            raise ValueError(f"{part.strip()!r}: expected three colon-separated p-states sleep:off:on")
        try:
            sleep, off, on = (int(f) for f in fields)
        except ValueError:
            raise ValueError(f"{part.strip()!r}: p-states must be non-negative integers") from None
        for p, role in ((sleep, "sleep"), (off, "virtual"), (on, "virtual")):
            if not 0 <= p < nb_pstates:
                raise ValueError(f"{part.strip()!r}: p-state {p} does not exist (the host has "
                                 f"{nb_pstates})")
            if roles.get(p, role) != role or (role == "sleep" and p in roles):
                raise ValueError(f"{part.strip()!r}: p-state {p} is given two roles")
            roles[p] = role
        triplets.append((sleep, off, on))
    if not triplets:
        raise ValueError("empty value")
    return tuple(triplets)


def build_sleep_states(nb_pstates: np.ndarray, triplets: list[tuple[tuple[int, int, int], ...]]) -> SleepStates:
    width = int(np.max(nb_pstates))
    n = len(triplets)
    kind = np.full((n, width), -1, np.int64)
    off = np.full((n, width), -1, np.int64)
    on = np.full((n, width), -1, np.int64)
    for h, host in enumerate(triplets):
        kind[h, :int(nb_pstates[h])] = COMPUTATION
        for s, o, w in host:
            kind[h, s] = SLEEP
            kind[h, o] = kind[h, w] = VIRTUAL
            off[h, s], on[h, s] = o, w
    return SleepStates(kind, off, on, tuple(triplets))


def attach_sleep_states(platform, states: SleepStates | None):
    """Set ``platform``'s sleep table (the instance is frozen: set as a plain attribute, kept
    by pickling); returns the platform."""
    object.__setattr__(platform, _ATTRIBUTE, states)
    return platform


def sleep_states(platform) -> SleepStates | None:
    """The platform's sleep p-states, or None when no host declares any."""
    return getattr(platform, _ATTRIBUTE, None)


def require_sleep_states(platform, who: str) -> SleepStates:
    """The sleep table of a flat platform with sleep p-states, for ``who`` (the shutdown
    policy, HeteroEnv's power actions); a ConfigError saying what is missing otherwise."""
    from hdeeprm.common.errors import ConfigError

    states = sleep_states(platform)
    if states is None:
        raise ConfigError(f"{who}: {platform.source} declares no sleep p-state; expected hosts with Batsim's "
                          "property sleep_pstates=\"sleep:off:on\" (e.g. tests/data/platforms/sleep_4hosts.xml)")
    if platform.hierarchy is not None:
        raise ConfigError(f"{who}: {platform.source} has an HDeepRM hierarchy, whose p-states HDeepRM's own rules "
                          "set; expected a flat SimGrid XML platform with sleep p-states")
    return states
