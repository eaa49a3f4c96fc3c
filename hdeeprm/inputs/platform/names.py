"""Platform names a user may give instead of a path: bundled platforms ("gaia") and
homogeneous ones ("16xDell R720")."""

from __future__ import annotations

import os

from hdeeprm.common.errors import PlatformError
from hdeeprm.inputs.platform import homogeneous
from hdeeprm.inputs.platform.json_platform import bundled_platforms_dir


def resolve_platform_name(value: str | os.PathLike) -> str:
    """``value`` as a path, where a bare name without extension ("gaia") that matches a
    bundled platform means that platform, and ``"<N>x<node type>"`` ("16xDell R720": N nodes
    of a type of the default node type library, see :mod:`hdeeprm.inputs.platform.homogeneous`)
    means the platform JSON written for it in
    :func:`hdeeprm.inputs.platform.homogeneous.generated_platforms_dir`.

    Anything else comes back unchanged, including an ``<N>x...`` name whose node type the
    default library does not know: :func:`hdeeprm.inputs.platform.load_platform` then reports it
    (naming the known node types), or compiles it with the type library it is given.
    """
    text = str(value)
    if os.sep not in text and not os.path.splitext(text)[1]:
        path = bundled_platforms_dir() / f"{text}.json"
        if path.is_file():
            return str(path)
    if homogeneous.parse_homogeneous_spec(text) is not None \
            and os.path.splitext(text)[1].lower() not in (".json", ".xml"):
        try:
            document = homogeneous.homogeneous_document(text)
        except PlatformError:
            return text  # load_platform reports it
        return str(homogeneous.write_platform_document(document, text))
    return text
