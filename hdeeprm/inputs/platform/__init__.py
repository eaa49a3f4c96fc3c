"""Platforms: HDeepRM platform JSON or SimGrid/Batsim XML -> immutable :class:`Platform`."""

from __future__ import annotations

from pathlib import Path

from hdeeprm.common.errors import PlatformError
from hdeeprm.inputs.platform.flat import UNLIMITED_MEM_BW_GBS, UNLIMITED_MEMORY_MB, with_flat_hierarchy
from hdeeprm.inputs.platform.hierarchy_file import (
    HierarchyFile,
    attach_hierarchy,
    read_hierarchy_file,
    write_hierarchy,
)
from hdeeprm.inputs.platform.homogeneous import (
    generated_platforms_dir,
    homogeneous_platform,
    parse_homogeneous_spec,
)
from hdeeprm.inputs.platform.json_platform import (
    ClusterSpec,
    LinkSpec,
    NodeGroup,
    PlatformDescription,
    bundled_platform,
    compile_platform,
    load_json_platform,
    platform_from_hierarchy,
    read_platform_description,
)
from hdeeprm.inputs.platform.model import Hierarchy, Platform
from hdeeprm.inputs.platform.names import resolve_platform_name
from hdeeprm.inputs.platform.sleep import sleep_states
from hdeeprm.inputs.platform.typelib import (
    NetworkType,
    NodeType,
    PathLike,
    ProcessorType,
    TypeLibrary,
    default_type_library,
    load_type_library,
)
from hdeeprm.inputs.platform.xml_platform import load_xml_platform

__all__ = [
    "ClusterSpec", "Hierarchy", "HierarchyFile", "LinkSpec", "NetworkType", "NodeGroup",
    "NodeType", "Platform", "PlatformDescription", "ProcessorType", "TypeLibrary",
    "attach_hierarchy", "bundled_platform", "compile_platform", "default_type_library",
    "load_json_platform",
    "platform_from_hierarchy", "resolve_platform_name", "load_platform", "load_type_library", "load_xml_platform",
    "read_hierarchy_file", "read_platform_description", "write_hierarchy",
    "UNLIMITED_MEMORY_MB", "UNLIMITED_MEM_BW_GBS", "generated_platforms_dir", "homogeneous_platform",
    "parse_homogeneous_spec", "with_flat_hierarchy",
]


def load_platform(path: PathLike, hierarchy: PathLike | None = None, *,
                  typelib: TypeLibrary | PathLike | None = None,
                  master_host: str = "master_host") -> Platform:
    """Load a platform, choosing the reader by file extension.

    ``.json``: HDeepRM platform JSON compiled with ``typelib`` (default library when None);
    it carries its own hierarchy, so ``hierarchy`` must be None. ``.xml``: SimGrid/Batsim
    platform, with the hierarchy file ``hierarchy`` attached when given; a platform XML of the
    original HDeepRM (cores declared in p-state 3, at 0.001 flop/s) needs one, and is refused
    without it.

    Without either extension, ``path`` may also be a bundled platform name ("gaia") or a
    homogeneous platform ``"<N>x<node type>"`` ("16xDell R720": one cluster of N nodes of that
    type of ``typelib``, see :mod:`hdeeprm.inputs.platform.homogeneous`), compiled directly; an
    unknown node type raises :class:`PlatformError` listing the known ones.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in (".json", ".xml"):
        if parse_homogeneous_spec(path) is not None:
            if hierarchy is not None:
                raise PlatformError(str(hierarchy), None, "a hierarchy file only applies to XML "
                                    f"platforms; {str(path)!r} is a homogeneous platform with "
                                    "its own hierarchy")
            return homogeneous_platform(str(path), typelib)
        resolved = resolve_platform_name(path)
        if resolved != str(path):
            path, suffix = resolved, Path(resolved).suffix.lower()
    if suffix == ".json":
        if hierarchy is not None:
            raise PlatformError(str(hierarchy), None, "a hierarchy file only applies to XML "
                                f"platforms; {path} is a JSON platform with its own hierarchy")
        return load_json_platform(path, typelib)
    if suffix == ".xml":
        # The original HDeepRM's XML is refused without a hierarchy: its cores would stay at
        # 0.001 flop/s (see hdeeprm.inputs.platform.xml_platform.is_original_hdeeprm).
        platform = load_xml_platform(path, master_host=master_host, refuse_original=hierarchy is None)
        if hierarchy is not None and sleep_states(platform) is not None:
            raise PlatformError(str(path), "sleep_pstates", "hosts with Batsim sleep p-states do not "
                                "go with a hierarchy file (HDeepRM's p-state rules own every p-state)")
        return platform if hierarchy is None else attach_hierarchy(platform, hierarchy)
    raise PlatformError(str(path), None, "unknown platform format; expected a .json (HDeepRM "
                        "platform) or .xml (SimGrid/Batsim platform) file, a bundled platform "
                        "name or '<N>x<node type>'")
