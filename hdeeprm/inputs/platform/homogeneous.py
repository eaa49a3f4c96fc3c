"""Homogeneous platforms named in one line: ``"<N>x<node type>"``, e.g. ``"16xDell R720"``.

Such a name means one cluster of N nodes of one type of the node type library, with the
zero-latency links of the bundled ``quickstart`` platform (InfiniBand QDR, latency 0 us,
inside the cluster and up to the master). It is accepted wherever a bundled platform name is:

* :func:`hdeeprm.inputs.platform.resolve_platform_name` turns it into the path of a platform JSON it
  writes once into :func:`generated_platforms_dir` (so that every caller that wants a file,
  such as real Batsim runs, sweeps and cross-validation, gets one);
* :func:`hdeeprm.inputs.platform.load_platform` compiles it directly.

Spaces around the ``x`` are allowed (``"16 x Dell R720"``), and the node type is matched
exactly, else ignoring case when only one type matches.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

from hdeeprm.common.atomic import atomic_path
from hdeeprm.common.errors import PlatformError
from hdeeprm.inputs.limits import ECHO_CHARS, MAX_CORES
from hdeeprm.inputs.platform.json_platform import (
    ClusterSpec,
    LinkSpec,
    NodeGroup,
    PlatformDescription,
    compile_platform,
)
from hdeeprm.inputs.platform.model import Platform
from hdeeprm.inputs.platform.typelib import (
    TIME_UNITS,
    PathLike,
    TypeLibrary,
    as_type_library,
    parse_quantity,
    suggest,
)

#: Network type and latency of both link levels, as in the bundled quickstart platform.
LINK_NETWORK = "InfiniBand QDR"
LINK_LATENCY = "0us"

_SPEC = re.compile(r"^\s*(\d+)\s*[xX]\s*(\S.*?)\s*$")


def parse_homogeneous_spec(text: str | os.PathLike) -> tuple[int, str] | None:
    """(N, node type as written) when ``text`` has the form ``<N>x<node type>``, else None.
    Nothing is checked against the type library here."""
    text = str(text)
    if os.sep in text or (os.altsep and os.altsep in text):
        return None
    match = _SPEC.match(text)
    if match is None:
        return None
    digits = match.group(1).lstrip("0") or "0"
    # Python refuses to convert over 4300 digits; any such count is far over MAX_CORES.
    number = int(digits) if len(digits) <= 30 else 10**30
    return number, match.group(2)


def _node_type(spec: str, written: str, lib: TypeLibrary) -> str:
    if written in lib.nodes:
        return written
    folded = [name for name in lib.nodes if name.casefold() == written.casefold()]
    if len(folded) == 1:
        return folded[0]
    raise PlatformError(spec, None, f"unknown node type {written!r}" + suggest(written, lib.nodes)
                        + "; expected '<N>x<node type>' with one of the node types: "
                        + ", ".join(sorted(lib.nodes)))


def _shown(spec: str | os.PathLike) -> str:
    """``spec`` as written, for a message; quoted when it holds a line break or another
    unprintable character, so that the message stays on one line."""
    text = str(spec)
    return text if text.isprintable() else repr(text)


def homogeneous_description(spec: str, typelib: TypeLibrary | PathLike | None = None
                            ) -> PlatformDescription:
    """The platform description of ``"<N>x<node type>"`` (``typelib``: default library when
    None). Raises :class:`PlatformError` naming ``spec`` when it is not of that form, N < 1
    or the node type is unknown (the message lists the known ones)."""
    parsed = parse_homogeneous_spec(spec)
    if parsed is None:
        raise PlatformError(_shown(spec), None, "expected a homogeneous platform name "
                            "'<N>x<node type>', such as '16xDell R720'")
    number, written = parsed
    if number < 1:
        raise PlatformError(_shown(spec), None, f"expected at least 1 node, found {number}")
    if number > MAX_CORES:
        shown = number if number < 10**30 else "over 10**30"
        raise PlatformError(_shown(spec)[:ECHO_CHARS], None,
                            f"expected at most {MAX_CORES:,} nodes (the limit on the size of a "
                            f"platform), found {shown}")
    lib = as_type_library(typelib)
    node_type = _node_type(_shown(spec), written, lib)
    if LINK_NETWORK not in lib.networks:
        raise PlatformError(_shown(spec), None, f"the type library has no network type "
                            f"{LINK_NETWORK!r}, which homogeneous platforms use for their links")
    network = lib.networks[LINK_NETWORK]
    link = LinkSpec(LINK_NETWORK, network.bandwidth, network.bandwidth_bytes_per_s, LINK_LATENCY,
                    parse_quantity(LINK_LATENCY, TIME_UNITS))
    cluster = ClusterSpec(canonical_name(number, node_type), (NodeGroup(node_type, number),), link)
    return PlatformDescription(str(spec), (cluster,), link, lib)


def canonical_name(number: int, node_type: str) -> str:
    """``"<N>x<node type>"`` as written by this module (no spaces around the x)."""
    return f"{number}x{node_type}"


def homogeneous_platform(spec: str, typelib: TypeLibrary | PathLike | None = None) -> Platform:
    """Compile ``"<N>x<node type>"`` into a :class:`Platform` (source: ``spec``)."""
    return compile_platform(homogeneous_description(spec, typelib))


def homogeneous_document(spec: str, typelib: TypeLibrary | PathLike | None = None) -> dict:
    """The HDeepRM platform JSON document of ``"<N>x<node type>"``."""
    description = homogeneous_description(spec, typelib)
    cluster = description.clusters[0]
    link = {"type": LINK_NETWORK, "latency": LINK_LATENCY}
    return {
        "clusters": [{
            "id": cluster.id,
            "nodes": [{"type": g.node_type, "number": g.number} for g in cluster.node_groups],
            "local_links": dict(link),
        }],
        "global_links": dict(link),
    }


def generated_platforms_dir() -> Path:
    """Folder of the platform JSONs written for ``<N>x<node type>`` names:
    ``$XDG_CACHE_HOME/hdeeprm/platforms`` (``~/.cache/hdeeprm/platforms`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hdeeprm" / "platforms"


def _file_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9.+-]+", "_", name).strip("_") + ".json"


def homogeneous_platform_file(spec: str, typelib: TypeLibrary | PathLike | None = None,
                              directory: PathLike | None = None) -> Path:
    """Write (once; rewritten only when its content differs) the platform JSON of ``spec``
    into ``directory`` (default :func:`generated_platforms_dir`, else the system's temporary
    folder when that cannot be created) and return its path. The file is named after the
    canonical name (``16xDell_R720.json``) and written atomically, so concurrent callers are
    safe."""
    return write_platform_document(homogeneous_document(spec, typelib), spec, directory)


def write_platform_document(document: dict, spec: str,
                            directory: PathLike | None = None) -> Path:
    """Write a document of :func:`homogeneous_document` as :func:`homogeneous_platform_file`
    does; ``spec`` names the platform in errors."""
    text = json.dumps(document, indent=2) + "\n"
    name = _file_name(document["clusters"][0]["id"])
    folders = [Path(directory)] if directory is not None else [
        generated_platforms_dir(), Path(tempfile.gettempdir()) / "hdeeprm-platforms"]
    failure: OSError | None = None
    for folder in folders:
        path = folder / name
        try:
            if path.is_file() and path.read_text(encoding="utf-8") == text:
                return path
            folder.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as tmp:
                tmp.write_text(text, encoding="utf-8")
            return path
        except OSError as exc:
            failure = exc
    raise PlatformError(str(spec), None, f"cannot write its platform file into "
                        f"{', '.join(str(f) for f in folders)}: {failure}")
