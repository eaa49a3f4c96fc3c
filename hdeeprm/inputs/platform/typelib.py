"""Hardware type libraries: processor, node and network types referenced by platform JSONs.

The package ships a default library in ``hdeeprm/data/types/`` (``processors.json``,
``nodes.json``, ``networks.json``). Users may extend or override it with their own files:
entries are merged by type name, later sources winning, and the merged library is validated
as a whole (a node type may reference a processor type defined in another file).

Each library file is a JSON object keyed by type name. Keys starting with ``_`` (such as the
``_doc`` entry) are comments and are skipped.

This module also holds the small JSON-checking and SimGrid-unit helpers shared by the other
platform readers.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hdeeprm.common.bundled import DATA_DIR
from hdeeprm.common.errors import PlatformError
from hdeeprm.inputs.limits import MAX_PLATFORM_BYTES, clip, decode_utf8, read_bounded

PathLike = str | Path

#: Default library shipped with the package.
DEFAULT_TYPES_DIR = DATA_DIR / "types"

# File names recognised in a library directory, per kind. The second names are those of the
# original HDeepRM data folder, so that a copy of it can be used as is.
_LIBRARY_FILES = {
    "processors": ("processors.json", "processor_types.json"),
    "nodes": ("nodes.json", "node_types.json"),
    "networks": ("networks.json", "network_types.json"),
}


# --------------------------------------------------------------------------------------------
# JSON checking helpers (shared with json_platform and hierarchy_file)
# --------------------------------------------------------------------------------------------

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def json_path(parts: Sequence[str | int]) -> str:
    """Format a JSON path such as ``clusters[0].nodes[1].number``.

    Keys that are not plain identifiers (type names with spaces, for instance) are written
    ``["Xeon E5-2660"]`` so the path stays unambiguous.
    """
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENTIFIER.match(part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part)}]"
    return out or "(top level)"


def describe(value: Any) -> str:
    """Short description of a JSON value for 'found ...' messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"number {value!r}"
    if isinstance(value, str):
        return f"string {value!r}"
    if isinstance(value, list):
        return f"a list of {len(value)} items"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


@dataclass(frozen=True)
class JsonChecker:
    """Type checks on parsed JSON that raise :class:`PlatformError` naming file and path."""

    source: str

    def error(self, path: Sequence[str | int], message: str) -> PlatformError:
        return PlatformError(self.source, json_path(path), message)

    def obj(self, value: Any, path: Sequence[str | int], required: Iterable[str],
            optional: Iterable[str] = (), comments: bool = False) -> dict:
        """Check an object has every ``required`` key and no key outside required/optional.

        With ``comments``, keys starting with ``_`` are allowed and ignored.
        """
        if not isinstance(value, dict):
            raise self.error(path, f"expected an object, found {describe(value)}")
        required = tuple(required)
        allowed = set(required) | set(optional)
        for key in value:
            if key in allowed or (comments and key.startswith("_")):
                continue
            raise self.error([*path, key], "unknown key; expected one of: "
                             + ", ".join(sorted(allowed)))
        for key in required:
            if key not in value:
                raise self.error([*path, key], "missing required key (this object needs: "
                                 + ", ".join(required) + ")")
        return value

    def string(self, value: Any, path: Sequence[str | int], nonempty: bool = True) -> str:
        if not isinstance(value, str) or (nonempty and not value.strip()):
            raise self.error(path, f"expected a non-empty string, found {describe(value)}")
        return value

    def integer(self, value: Any, path: Sequence[str | int], minimum: int | None = None) -> int:
        # bool is an int subclass in Python, but never a count in a platform file
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.error(path, f"expected {_int_kind(minimum)}, found {describe(value)}")
        if minimum is not None and value < minimum:
            raise self.error(path, f"expected {_int_kind(minimum)}, found {value}")
        return value

    def number(self, value: Any, path: Sequence[str | int], *, positive: bool = False,
               nonnegative: bool = False) -> float:
        kind = "a positive number" if positive else (
            "a non-negative number" if nonnegative else "a number")
        if not isinstance(value, (int, float)) or isinstance(value, bool) \
                or not math.isfinite(value):
            raise self.error(path, f"expected {kind}, found {describe(value)}")
        if (positive and value <= 0) or (nonnegative and value < 0):
            raise self.error(path, f"expected {kind}, found {value!r}")
        return float(value)

    def list(self, value: Any, path: Sequence[str | int], nonempty: bool = True) -> list:
        if not isinstance(value, list):
            raise self.error(path, f"expected a list, found {describe(value)}")
        if nonempty and not value:
            raise self.error(path, "expected a non-empty list, found an empty one")
        return value


def _int_kind(minimum: int | None) -> str:
    if minimum == 1:
        return "a positive integer"
    if minimum == 0:
        return "a non-negative integer"
    if minimum is None:
        return "an integer"
    return f"an integer >= {minimum}"


def read_json(path: PathLike) -> Any:
    """Parse a JSON file, turning I/O and syntax problems into :class:`PlatformError`.

    Files larger than :data:`hdeeprm.inputs.limits.MAX_PLATFORM_BYTES` (64 MiB), holding NUL
    bytes, nested too deeply, or with integers of more than 30 digits are refused."""
    source = str(path)

    def error(message: str) -> PlatformError:
        return PlatformError(source, None, message)

    text = decode_utf8(read_bounded(path, MAX_PLATFORM_BYTES, "a platform JSON file", error),
                       error)
    try:
        return json.loads(text, parse_int=_parse_int)
    except json.JSONDecodeError as exc:
        raise PlatformError(source, f"line {exc.lineno} column {exc.colno}",
                            f"invalid JSON: {exc.msg}") from None
    except RecursionError:
        raise PlatformError(source, None, "invalid JSON: nested too deeply") from None
    except ValueError as exc:  # from the parse hooks
        raise PlatformError(source, None, str(exc)) from None


_MAX_INT_DIGITS = 30


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > _MAX_INT_DIGITS:
        raise ValueError(f"integer too large ({len(text)} digits): {clip(text)}")
    return int(text)


def suggest(name: str, known: Iterable[str]) -> str:
    """' (did you mean 'X'?)' when a known name is close to ``name``, else ''."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


# --------------------------------------------------------------------------------------------
# SimGrid quantities: "4000Mf", "10.0Gbps", "0us"
# --------------------------------------------------------------------------------------------

_DECIMAL_PREFIXES = {"": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
                     "Z": 1e21, "Y": 1e24}
_BINARY_PREFIXES = {f"{p}i": 1024.0 ** (i + 1) for i, p in enumerate("KMGTPEZY")}


def _prefixed(base: str, factor: float) -> dict[str, float]:
    units = {p + base: m * factor for p, m in _DECIMAL_PREFIXES.items()}
    units.update({p + base: m * factor for p, m in _BINARY_PREFIXES.items()})
    return units


#: Speed units, to flop/s. A bare number is taken as flop/s, as SimGrid does.
SPEED_UNITS: dict[str, float] = {"": 1.0, **_prefixed("f", 1.0)}
#: Bandwidth units, to bytes/s (SimGrid's internal unit; ``bps`` counts bits).
BANDWIDTH_UNITS: dict[str, float] = {"": 1.0, **_prefixed("Bps", 1.0),
                                     **_prefixed("bps", 0.125)}
#: Time units, to seconds.
TIME_UNITS: dict[str, float] = {"": 1.0, "w": 604800.0, "d": 86400.0, "h": 3600.0, "m": 60.0,
                                "s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9, "ps": 1e-12}

_QUANTITY = re.compile(r"^\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*([A-Za-z]*)\s*$")


def parse_quantity(text: str, units: Mapping[str, float]) -> float:
    """Value of a SimGrid quantity such as ``"4000Mf"`` in the base unit of ``units``.

    The number is parsed as a double and multiplied by the unit factor, as SimGrid does, so
    the result is bit-identical to what the real simulator uses. Raises ``ValueError`` with
    a message naming the accepted units when the text is not a number with a known unit.
    """
    match = _QUANTITY.match(text)
    if match is None:
        raise ValueError(f"expected a number with a unit, found {text.strip()!r}")
    number, unit = match.groups()
    if unit not in units:
        # Binary prefixes (Ki, Mi...) are accepted but left out of the message for brevity.
        shown = ", ".join(u for u in units if u and "i" not in u)
        raise ValueError(f"unknown unit {unit!r} in {text.strip()!r}; expected one of {shown}")
    return float(number) * units[unit]


# --------------------------------------------------------------------------------------------
# Library entries
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcessorType:
    """One processor model.

    ``clock_rate_ghz`` is the base clock (GHz), ``dpflops_per_cycle`` the double-precision
    FLOP per cycle per core, ``mem_bw_gbs`` the memory bandwidth of the whole processor (GB/s,
    shared by its cores), ``power_w`` its TDP (W). ``uarch``, ``id``, ``device`` and
    ``llc_size_mb`` are descriptive only.
    """

    name: str
    cores: int
    clock_rate_ghz: float
    dpflops_per_cycle: float
    mem_bw_gbs: float
    power_w: float
    uarch: str = ""
    id: str = ""
    device: str = "CPU"
    llc_size_mb: float | None = None

    @property
    def gflops_per_core(self) -> float:
        """Peak double-precision speed of one core, GFLOP/s."""
        return self.clock_rate_ghz * self.dpflops_per_cycle

    @property
    def watts_per_core(self) -> float:
        """Share of the processor's TDP attributed to one core, W."""
        return self.power_w / self.cores


@dataclass(frozen=True)
class NodeType:
    """One node model: ``processors`` is a list of (processor type name, count) expanded in
    order; ``memory_gb`` the node's memory capacity in GB (decimal)."""

    name: str
    processors: tuple[tuple[str, int], ...]
    memory_gb: float
    memory_type: str = ""
    id: str = ""

    @property
    def memory_mb(self) -> float:
        """Memory capacity in MB (decimal, GB x 1000, as HDeepRM counts it)."""
        return self.memory_gb * 1000.0

    def processor_sequence(self) -> tuple[str, ...]:
        """Processor type names of the node's processors, one entry per processor."""
        return tuple(name for name, number in self.processors for _ in range(number))


@dataclass(frozen=True)
class NetworkType:
    """One network technology: ``bandwidth`` is the SimGrid bandwidth string as written (it
    is copied into generated SimGrid platforms), ``bandwidth_bytes_per_s`` its value."""

    name: str
    bandwidth: str
    bandwidth_bytes_per_s: float


@dataclass(frozen=True)
class TypeLibrary:
    """Processor, node and network types by name, with the file each entry came from.

    The mappings are plain dicts so the library pickles; treat them as read-only.
    """

    processors: dict[str, ProcessorType]
    nodes: dict[str, NodeType]
    networks: dict[str, NetworkType]
    origins: dict[tuple[str, str], str] = field(default_factory=dict, repr=False)

    def origin(self, kind: str, name: str) -> str:
        """File that defined entry ``name`` of library ``kind`` ('processors', ...)."""
        return self.origins.get((kind, name), "<memory>")


# --------------------------------------------------------------------------------------------
# Parsing one library file
# --------------------------------------------------------------------------------------------

_PROCESSOR_REQUIRED = ("cores", "clock_rate", "dpflops_per_cycle", "mem_bw", "power")
_PROCESSOR_OPTIONAL = ("uarch", "id", "type", "llc_size")


def _parse_processor(check: JsonChecker, name: str, entry: Any) -> ProcessorType:
    path = [name]
    entry = check.obj(entry, path, _PROCESSOR_REQUIRED, _PROCESSOR_OPTIONAL)
    device = check.string(entry.get("type", "CPU"), [*path, "type"])
    if device != "CPU":
        # Only CPUs are modelled; silently treating another device as a CPU would be wrong.
        raise check.error([*path, "type"], f"only 'CPU' processors are modelled, found {device!r}")
    llc = entry.get("llc_size")
    return ProcessorType(
        name=name,
        cores=check.integer(entry["cores"], [*path, "cores"], minimum=1),
        clock_rate_ghz=check.number(entry["clock_rate"], [*path, "clock_rate"], positive=True),
        dpflops_per_cycle=check.number(entry["dpflops_per_cycle"], [*path, "dpflops_per_cycle"],
                                       positive=True),
        mem_bw_gbs=check.number(entry["mem_bw"], [*path, "mem_bw"], positive=True),
        power_w=check.number(entry["power"], [*path, "power"], nonnegative=True),
        uarch=check.string(entry.get("uarch", ""), [*path, "uarch"], nonempty=False),
        id=check.string(entry.get("id", ""), [*path, "id"], nonempty=False),
        device=device,
        llc_size_mb=None if llc is None else check.number(llc, [*path, "llc_size"],
                                                          nonnegative=True),
    )


def _parse_node(check: JsonChecker, name: str, entry: Any) -> NodeType:
    path = [name]
    entry = check.obj(entry, path, ("processors", "memory"), ("id",))
    groups = []
    for i, group in enumerate(check.list(entry["processors"], [*path, "processors"])):
        gpath = [*path, "processors", i]
        group = check.obj(group, gpath, ("type", "number"))
        groups.append((check.string(group["type"], [*gpath, "type"]),
                       check.integer(group["number"], [*gpath, "number"], minimum=1)))
    memory = check.obj(entry["memory"], [*path, "memory"], ("capacity",), ("type",))
    return NodeType(
        name=name,
        processors=tuple(groups),
        memory_gb=check.number(memory["capacity"], [*path, "memory", "capacity"],
                               nonnegative=True),
        memory_type=check.string(memory.get("type", ""), [*path, "memory", "type"],
                                 nonempty=False),
        id=check.string(entry.get("id", ""), [*path, "id"], nonempty=False),
    )


def _parse_network(check: JsonChecker, name: str, entry: Any) -> NetworkType:
    path = [name]
    entry = check.obj(entry, path, ("bandwidth",))
    text = check.string(entry["bandwidth"], [*path, "bandwidth"])
    try:
        value = parse_quantity(text, BANDWIDTH_UNITS)
    except ValueError as exc:
        raise check.error([*path, "bandwidth"], str(exc)) from None
    if value <= 0:
        raise check.error([*path, "bandwidth"], f"expected a positive bandwidth, found {text!r}")
    return NetworkType(name=name, bandwidth=text, bandwidth_bytes_per_s=value)


_PARSERS = {"processors": _parse_processor, "nodes": _parse_node, "networks": _parse_network}


def _read_library_file(kind: str, path: PathLike) -> dict[str, Any]:
    """Entries of one library file of ``kind``, validated individually."""
    check = JsonChecker(str(path))
    data = read_json(path)
    if not isinstance(data, dict):
        raise check.error([], f"expected an object keyed by type name, found {describe(data)}")
    parse = _PARSERS[kind]
    return {name: parse(check, name, entry)
            for name, entry in data.items() if not name.startswith("_")}


# --------------------------------------------------------------------------------------------
# Loading and merging
# --------------------------------------------------------------------------------------------


def _kind_of_file(path: Path) -> str:
    for kind, names in _LIBRARY_FILES.items():
        if path.name in names:
            return kind
    expected = ", ".join(n for names in _LIBRARY_FILES.values() for n in names)
    raise PlatformError(str(path), None, "cannot tell which type library this file holds; "
                        f"name it one of: {expected} (or pass it by keyword)")


def _files_of(source: PathLike) -> list[tuple[str, Path]]:
    """(kind, file) pairs found at ``source``: a library directory or a single file."""
    path = Path(source)
    if path.is_dir():
        found = [(kind, path / name) for kind, names in _LIBRARY_FILES.items()
                 for name in names if (path / name).is_file()]
        if not found:
            expected = ", ".join(names[0] for names in _LIBRARY_FILES.values())
            raise PlatformError(str(path), None,
                                f"directory holds no type library file (expected {expected})")
        return found
    if not path.exists():
        raise PlatformError(str(path), None, "type library file or directory not found")
    return [(_kind_of_file(path), path)]


def _check_references(lib: TypeLibrary) -> None:
    """Every processor type a node type names must exist in the merged library."""
    for node in lib.nodes.values():
        for i, (proc, _) in enumerate(node.processors):
            if proc not in lib.processors:
                raise PlatformError(
                    lib.origin("nodes", node.name),
                    json_path([node.name, "processors", i, "type"]),
                    f"unknown processor type {proc!r}{suggest(proc, lib.processors)}")


def load_type_library(*sources: PathLike, processors: PathLike | None = None,
                      nodes: PathLike | None = None, networks: PathLike | None = None,
                      include_default: bool = True) -> TypeLibrary:
    """Load the type library, optionally extended or overridden by user files.

    The package's default library comes first (unless ``include_default`` is False), then
    every ``sources`` entry in order, then the keyword files. A source is a directory holding
    any of ``processors.json``, ``nodes.json``, ``networks.json`` (or HDeepRM's
    ``processor_types.json``, ``node_types.json``, ``network_types.json``), or one such file.
    An entry with the name of an earlier one replaces it. References between libraries are
    checked on the merged result.
    """
    files: list[tuple[str, Path]] = []
    if include_default:
        files += _files_of(DEFAULT_TYPES_DIR)
    for source in sources:
        files += _files_of(source)
    for kind, path in (("processors", processors), ("nodes", nodes), ("networks", networks)):
        if path is not None:
            if not Path(path).is_file():
                raise PlatformError(str(path), None, f"{kind} type library file not found")
            files.append((kind, Path(path)))

    merged: dict[str, dict[str, Any]] = {kind: {} for kind in _LIBRARY_FILES}
    origins: dict[tuple[str, str], str] = {}
    for kind, path in files:
        for name, entry in _read_library_file(kind, path).items():
            merged[kind][name] = entry
            origins[(kind, name)] = str(path)
    lib = TypeLibrary(merged["processors"], merged["nodes"], merged["networks"], origins)
    _check_references(lib)
    return lib


def default_type_library() -> TypeLibrary:
    """The library shipped with the package."""
    return load_type_library()


def as_type_library(typelib: TypeLibrary | PathLike | Sequence[PathLike] | None) -> TypeLibrary:
    """Normalise the ``typelib`` argument of the loaders: None means the default library, a
    path (or list of paths) means the default extended by those files."""
    if typelib is None:
        return default_type_library()
    if isinstance(typelib, TypeLibrary):
        return typelib
    if isinstance(typelib, (str, Path)):
        return load_type_library(typelib)
    return load_type_library(*typelib)
