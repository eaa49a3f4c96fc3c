"""SimGrid/Batsim platform XML -> :class:`Platform` (flat: no hierarchy).

Only what the embedded engine needs is read: the compute hosts with their speed per p-state,
initial p-state and power per p-state. Links, routes and zones are ignored (jobs never
communicate in the supported workloads).

Machine ids follow Batsim: compute hosts sorted by byte-wise order of their ids, whatever
their declaration order or nesting in zones, the master host excluded.

The platform XML the original HDeepRM (0.3.x) generated is recognised (see
:func:`is_original_hdeeprm`): its cores start in p-state 3, whose speed is a token 0.001
flop/s, and only HDeepRM's decision side, with the node/processor hierarchy that the XML does
not hold, moves them to full speed. Read flat, no job of it would ever end, so
:func:`hdeeprm.inputs.platform.load_platform` refuses it unless a hierarchy file comes with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from lxml import etree

from hdeeprm.common.errors import PlatformError
from hdeeprm.inputs.limits import clip
from hdeeprm.inputs.platform.model import IDLE_SPEED_FLOPS, P_IDLE_PROCESSOR, Platform
from hdeeprm.inputs.platform.sleep import (
    SLEEP_PROPERTY,
    attach_sleep_states,
    build_sleep_states,
    parse_sleep_property,
)
from hdeeprm.inputs.platform.typelib import SPEED_UNITS, PathLike, parse_quantity

#: Power properties, in order of preference: SimGrid >= 3.25 name, then the older one that
#: HDeepRM's generated platforms use.
WATTAGE_PROPERTIES = ("wattage_per_state", "watt_per_state")

#: The original HDeepRM's core hosts: ``cor_<k>``, k its global core index.
ORIGINAL_HOST_NAME = re.compile(r"cor_[0-9]+")
#: The power property name the original HDeepRM writes (hdeeprm itself writes the newer one).
ORIGINAL_WATTAGE_PROPERTY = "watt_per_state"

# SimGrid elements that create hosts implicitly; not expanded here, so refuse them rather than
# silently losing machines.
_UNSUPPORTED_HOST_MAKERS = ("cluster", "cabinet", "peer")


@dataclass(frozen=True)
class _Host:
    name: str
    speeds: tuple[float, ...]
    pstate: int
    watts: tuple[tuple[float, float], ...] | None  # (idle, full) per p-state; None: not given
    wattage_property: str | None = None  # the property ``watts`` came from
    sleep: tuple[tuple[int, int, int], ...] = ()  # Batsim's sleep_pstates (sleep, off, on)


def _safe_parser() -> etree.XMLParser:
    # The DOCTYPE points at simgrid.org: never fetch it, never expand entities.
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                           dtd_validation=False, huge_tree=False)


def _one_line(message: str | None, limit: int = 200) -> str:
    """lxml messages may span lines (and echo the input): one line, of bounded length."""
    text = " ".join(str(message or "").split())
    return text if len(text) <= limit else text[:limit] + "..."


#: Batsim's own platform files (platforms/*_128.xml...) start with an empty line before the XML
#: declaration, which SimGrid's parser accepts and a strict XML parser refuses.
_LATE_DECLARATION = re.compile(rb"\s+(<\?xml\b[^>]*\?>)")
_DECLARED_ENCODING = re.compile(rb"""encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")


def parse_platform_xml(path: PathLike) -> etree._Element:
    """The root ``<platform>`` element of a SimGrid platform file, read as SimGrid does (no DTD
    fetched, no entity expanded, whitespace before the XML declaration allowed); errors name
    the file and line."""
    source = str(path)
    if not Path(path).is_file():
        raise PlatformError(source, None, "platform file not found")
    try:
        data = Path(path).read_bytes()
        late = _LATE_DECLARATION.match(data)
        if late is None:
            root = etree.fromstring(data, _safe_parser(), base_url=source)
        else:  # drop the declaration, keeping every line where it was
            declared = _DECLARED_ENCODING.search(late.group(1))
            encoding = declared.group(1).decode() if declared else "utf-8"
            text = (data[:late.start(1)] + b" " * len(late.group(1)) + data[late.end(1):]).decode(encoding)
            root = etree.fromstring(text, _safe_parser(), base_url=source)
    except etree.XMLSyntaxError as exc:
        line = getattr(exc, "lineno", None)
        raise PlatformError(source, f"line {line}" if line else None,
                            f"malformed XML: {_one_line(exc.msg)}") from None
    except (OSError, UnicodeDecodeError, LookupError) as exc:
        raise PlatformError(source, None, f"cannot read the XML: {_one_line(str(exc))}") from None
    if root.tag != "platform":
        raise PlatformError(source, f"line {root.sourceline}",
                            f"expected a <platform> root element, found <{root.tag}>")
    return root


class _HostReader:
    """Reads one <host> element, raising errors that name the host and the attribute."""

    def __init__(self, source: str, element: etree._Element):
        self.source = source
        self.element = element
        self.name = element.get("id", "")

    def error(self, message: str, field: str | None = None) -> PlatformError:
        where = f"host {self.name!r} (line {self.element.sourceline})"
        return PlatformError(self.source, where, message, field)

    def speeds(self) -> tuple[float, ...]:
        text = self.element.get("speed")
        if text is None:
            raise self.error("missing attribute", "speed")
        values = []
        for i, part in enumerate(text.split(",")):
            try:
                value = parse_quantity(part, SPEED_UNITS)
            except ValueError as exc:
                raise self.error(f"p-state {i}: {exc}", "speed") from None
            # SimGrid accepts 0 flop/s (used to model boot time); only negatives are nonsense.
            if value < 0 or not np.isfinite(value):
                raise self.error(f"p-state {i}: expected a finite, non-negative speed, found "
                                 f"{clip(part.strip())}", "speed")
            values.append(value)
        return tuple(values)

    def pstate(self, nb_pstates: int) -> int:
        text = self.element.get("pstate", "0")
        try:
            pstate = int(text.strip())
        except ValueError:
            raise self.error(f"expected an integer, found {text!r}", "pstate") from None
        if not 0 <= pstate < nb_pstates:
            raise self.error(f"p-state {pstate} out of range: the host has {nb_pstates} "
                             f"p-state(s) (0..{nb_pstates - 1})", "pstate")
        return pstate

    def properties(self) -> dict[str, str]:
        return {prop.get("id"): prop.get("value", "")
                for prop in self.element.findall("prop") if prop.get("id") is not None}

    def watts(self, nb_pstates: int) -> tuple[str | None, tuple[tuple[float, float], ...] | None]:
        """(the power property read, its (idle, full) watts per p-state), (None, None) without one."""
        props = self.properties()
        name = next((n for n in WATTAGE_PROPERTIES if n in props), None)
        if name is None:
            return None, None
        entries = props[name].split(",")
        if len(entries) != nb_pstates:
            raise self.error(f"{len(entries)} power entries for {nb_pstates} p-state(s) in "
                             "'speed'; expected one 'idle:full' per p-state", name)
        return name, tuple(self._power_entry(name, i, entry) for i, entry in enumerate(entries))

    def _power_entry(self, name: str, index: int, entry: str) -> tuple[float, float]:
        parts = entry.split(":")
        if len(parts) not in (2, 3):
            raise self.error(f"p-state {index}: expected 'idle:full' or 'idle:epsilon:full' "
                             f"watts, found {entry.strip()!r}", name)
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise self.error(f"p-state {index}: expected numbers, found {entry.strip()!r}",
                             name) from None
        if any(not np.isfinite(v) or v < 0 for v in values):
            raise self.error(f"p-state {index}: watts must be finite and non-negative, found "
                             f"{entry.strip()!r}", name)
        # With three values SimGrid bills 'epsilon' at an infinitesimal load and 'full' at
        # full load; the engine's linear model keeps the idle and full ends only.
        return values[0], values[-1]

    def read(self) -> _Host:
        if not self.name:
            raise PlatformError(self.source, f"line {self.element.sourceline}",
                                "<host> without an id", "id")
        speeds = self.speeds()
        pstate = self.pstate(len(speeds))
        if speeds[pstate] <= 0:
            # 0 flop/s is fine for a p-state the host never computes in (SimGrid's boot
            # states), not for the one it starts in: a job there would never end.
            raise PlatformError(self.source, f"host {self.name!r}",
                                f"speed 0 in its declared p-state {pstate} (line "
                                f"{self.element.sourceline}); expected a positive speed", "speed")
        prop, watts = self.watts(len(speeds))
        return _Host(self.name, speeds, pstate, watts, prop, self.sleep(len(speeds), pstate))

    def sleep(self, nb_pstates: int, pstate: int) -> tuple[tuple[int, int, int], ...]:
        """Batsim's ``sleep_pstates`` property (see hdeeprm.inputs.platform.sleep)."""
        text = self.properties().get(SLEEP_PROPERTY)
        if text is None:
            return ()
        try:
            triplets = parse_sleep_property(text, nb_pstates)
        except ValueError as exc:
            raise self.error(str(exc), SLEEP_PROPERTY) from None
        if any(pstate in t for t in triplets):
            raise self.error(f"the declared p-state {pstate} must be a computation p-state",
                             SLEEP_PROPERTY)
        return triplets


def _read_hosts(source: str, root: etree._Element, master_host: str) -> list[_Host]:
    for tag in _UNSUPPORTED_HOST_MAKERS:
        element = next(root.iter(tag), None)
        if element is not None:
            raise PlatformError(source, f"line {element.sourceline}",
                                f"<{tag}> elements are not supported; declare each compute "
                                "machine as a <host>")
    hosts: list[_Host] = []
    seen: dict[str, int] = {}
    for element in root.iter("host"):
        name = element.get("id", "")
        if name in seen:
            raise PlatformError(source, f"host {name!r} (line {element.sourceline})",
                                f"duplicate host id, first declared on line {seen[name]}", "id")
        seen[name] = element.sourceline
        if name == master_host:
            continue
        hosts.append(_HostReader(source, element).read())
    if not hosts:
        raise PlatformError(source, None,
                            f"no compute host (every <host> other than {master_host!r})")
    return hosts


def is_original_hdeeprm(hosts: list[_Host]) -> bool:
    """Whether the compute hosts are those of a platform XML generated by the original HDeepRM
    (0.3.x, its ``platform.xml``, which also has a master host): every one of them named
    ``cor_<k>``, declared with ``pstate="3"``, four speeds of which the last two are the token
    0.001 flop/s (``"G Gf, 0.75G Gf, 0.001f, 0.001f"``) and the original's ``watt_per_state``
    property. hdeeprm's own exports (``hdeeprm.backends.batsim.export``, also ``cor_<k>`` hosts
    in p-state 3) write ``wattage_per_state`` and are not taken for it: they are read as Batsim
    reads them (``hdeeprm replay`` of a crossval's Batsim folder loads one without a hierarchy,
    the transcript carrying the p-state changes)."""
    return all(
        ORIGINAL_HOST_NAME.fullmatch(h.name) is not None
        and h.pstate == P_IDLE_PROCESSOR
        and len(h.speeds) == 4
        and h.speeds[2] == h.speeds[3] == IDLE_SPEED_FLOPS
        and h.speeds[0] > IDLE_SPEED_FLOPS
        and h.wattage_property == ORIGINAL_WATTAGE_PROPERTY
        for h in hosts)


def original_hdeeprm_error(source: str) -> PlatformError:
    """The one-line refusal of an original HDeepRM platform XML read without a hierarchy."""
    return PlatformError(source, None, "an original HDeepRM platform XML: its cores start in p-state 3 "
                         f"({IDLE_SPEED_FLOPS:g} flop/s) and only HDeepRM's node/processor hierarchy, which "
                         "the XML does not hold, moves them to full speed, so no job would end; pass the "
                         "original's platform JSON instead (--platform path/to/platform.json: hdeeprm "
                         "compiles it), or a hierarchy.json for this XML (--hierarchy)")


def load_xml_platform(path: PathLike, master_host: str = "master_host", *,
                      refuse_original: bool = False) -> Platform:
    """Read a SimGrid/Batsim platform XML into a flat :class:`Platform`.

    Every ``<host>`` in the tree except ``master_host`` is a machine; machine ids follow the
    byte-wise order of host ids (Python's ``str`` order, which is UTF-8 byte order). Speeds
    are in flop/s, watts in W; hosts with fewer p-states than others are padded with NaN.
    A host without a power property consumes 0 W. ``hierarchy`` is None: attach one with
    :func:`hdeeprm.inputs.platform.attach_hierarchy`.

    ``refuse_original``: raise :func:`original_hdeeprm_error` when the file is a platform XML
    of the original HDeepRM (:func:`is_original_hdeeprm`), which only makes sense with its
    hierarchy (``load_platform`` sets it when no hierarchy file is given).
    """
    source = str(path)
    root = parse_platform_xml(path)
    hosts = sorted(_read_hosts(source, root, master_host), key=lambda h: h.name)
    if refuse_original and is_original_hdeeprm(hosts) \
            and any(h.get("id") == master_host for h in root.iter("host")):
        raise original_hdeeprm_error(source)
    width = max(len(h.speeds) for h in hosts)
    speeds = np.full((len(hosts), width), np.nan)
    idle = np.full((len(hosts), width), np.nan)
    full = np.full((len(hosts), width), np.nan)
    for i, host in enumerate(hosts):
        n = len(host.speeds)
        speeds[i, :n] = host.speeds
        if host.watts is None:
            idle[i, :n] = 0.0
            full[i, :n] = 0.0
        else:
            idle[i, :n] = [w[0] for w in host.watts]
            full[i, :n] = [w[1] for w in host.watts]
    platform = Platform(
        host_names=tuple(h.name for h in hosts),
        speeds=speeds,
        watts_idle=idle,
        watts_full=full,
        nb_pstates=np.array([len(h.speeds) for h in hosts]),
        initial_pstate=np.array([h.pstate for h in hosts]),
        hierarchy=None,
        source=source,
    )
    if any(h.sleep for h in hosts):
        attach_sleep_states(platform, build_sleep_states(platform.nb_pstates, [h.sleep for h in hosts]))
    return platform


#: Zones whose routing gives a host a route to itself through the network model's loopback
#: link (SimGrid 3.32 FullZone/DijkstraZone ``do_seal``): a message between two actors of one
#: host crosses it.
_LOOPBACK_ROUTINGS = ("Full", "Dijkstra", "DijkstraCache")
#: SimGrid 3.32's defaults: network/loopback-bw 10 GB/s, network/loopback-lat 0 s.
LOOPBACK_BYTES_PER_S = 1e10


def message_delay_reason(path: PathLike) -> str | None:
    """Why Batsim's own messages take simulated time on this platform, or None if they take none.

    Batsim's actors (the server, the job submitters, the scheduler's reply, the CALL_ME_LATER
    waiters on the master host; a job or a switch on its first machine) talk through 1-byte
    SimGrid messages, and SimGrid times them on the platform's network. They take no time
    when every host sits in a Vivaldi zone at coordinates 0 0 0 with no links. Otherwise they
    shift Batsim's events by a little, which the engine does not simulate: in a Full or Dijkstra
    zone a message between two actors of the master host crosses the loopback link (1 byte at
    10 GB/s: 1e-10 s), enough to put two events of the same printed instant in two messages.
    """
    source = str(path)
    root = parse_platform_xml(path)
    link = next(root.iter("link", "backbone"), None)
    if link is not None:
        return (f"{source}: line {link.sourceline}: <{link.tag} id={link.get('id')!r}>: Batsim's messages "
                "cross the platform's links and take their latency and bandwidth")
    zones = [zone for zone in root.iter("zone", "AS") if any(child.tag == "host" for child in zone)]
    if len(zones) > 1:
        return (f"{source}: hosts in {len(zones)} zones (lines {', '.join(str(z.sourceline) for z in zones[:3])}): "
                "Batsim's messages between zones cross zone routes")
    for zone in zones:
        routing = zone.get("routing", "")
        if routing in _LOOPBACK_ROUTINGS:
            return (f"{source}: line {zone.sourceline}: zone {zone.get('id')!r} has routing {routing!r}: a message "
                    "between two of Batsim's actors on the master host crosses SimGrid's loopback link "
                    f"(1 byte at {LOOPBACK_BYTES_PER_S:g} B/s: 1e-10 s)")
        if routing != "Vivaldi":
            return (f"{source}: line {zone.sourceline}: zone {zone.get('id')!r} has routing {routing!r}: "
                    "expected a Vivaldi zone, where Batsim's messages take no time")
    for host in root.iter("host"):
        coordinates = (host.get("coordinates") or "0 0 0").replace(",", " ").split()
        try:
            nonzero = any(float(c) != 0.0 for c in coordinates)
        except ValueError:
            nonzero = True
        if nonzero:
            return (f"{source}: host {host.get('id')!r} (line {host.sourceline}): coordinates "
                    f"{host.get('coordinates')!r}: Vivaldi latencies between hosts delay Batsim's messages")
    return None
