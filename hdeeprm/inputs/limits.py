"""Size limits on what a user gives us, and a bounded file reader shared by the input parsers.

Hostile or broken input (``/dev/zero``, a gzip bomb, a platform of a billion nodes) must be
refused with a one-line :class:`~hdeeprm.common.errors.FormatError` before it allocates
memory, not end in a ``MemoryError`` or a traceback. The limits are generous for real data:

* :data:`MAX_SWF_BYTES` (2 GiB): an SWF trace, after decompression (the largest trace of the
  Parallel Workloads Archive is a few hundred MB uncompressed);
* :data:`MAX_JSON_BYTES` (512 MiB): a Batsim JSON workload;
* :data:`MAX_PLATFORM_BYTES` (64 MiB): a platform JSON or type library file;
* :data:`MAX_CORES` (10**6): cores (machines) of one platform;
* :data:`MAX_RES` (2**31): resources one job may request.

Text inputs never hold NUL bytes, so a NUL byte stops the reading at once ("binary data").
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Callable
from pathlib import Path

GIB = 1 << 30
MIB = 1 << 20
MAX_SWF_BYTES = 2 * GIB
MAX_JSON_BYTES = 512 * MIB
MAX_PLATFORM_BYTES = 64 * MIB
MAX_CORES = 10**6
MAX_RES = 2**31
#: Most characters of bad input a message repeats.
ECHO_CHARS = 80
_CHUNK = 4 * MIB

ErrorFactory = Callable[[str], Exception]


def clip(text: object, limit: int = ECHO_CHARS) -> str:
    """``repr``-like short form of bad input for a message: at most ``limit`` characters,
    with the total length said when it was cut."""
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    shown = repr(text) if isinstance(text, str) else repr(text)
    if len(shown) <= limit:
        return shown
    length = len(text) if isinstance(text, str) else len(shown)
    return f"{shown[:limit]}... ({length} characters)"


def _size_text(nbytes: int) -> str:
    if nbytes >= GIB and nbytes % GIB == 0:
        return f"{nbytes // GIB} GiB"
    if nbytes >= MIB and nbytes % MIB == 0:
        return f"{nbytes // MIB} MiB"
    return f"{nbytes} bytes"


GZIP_MAGIC = b"\x1f\x8b"


def _read_chunks(stream, limit: int, what: str, error: ErrorFactory,
                 allow_gzip: bool = False) -> bytes:
    out = bytearray()
    text = True
    while True:
        chunk = stream.read(_CHUNK)
        if not chunk:
            return bytes(out)
        if not out and allow_gzip and chunk[:2] == GZIP_MAGIC:
            text = False  # compressed: checked once decompressed
        if text and b"\0" in chunk:
            raise error(f"binary data (NUL byte at offset {len(out) + chunk.index(0)}), "
                        f"expected {what} text")
        out += chunk
        if len(out) > limit:
            raise error(f"larger than the limit of {_size_text(limit)} for {what}")


def read_bounded(path: str | Path, limit: int, what: str, error: ErrorFactory,
                 allow_gzip: bool = False) -> bytes:
    """The bytes of ``path``, refused through ``error(message)`` (an exception to raise) when
    they exceed ``limit`` or hold a NUL byte (unless ``allow_gzip`` and they start with the
    gzip magic bytes). Regular files are checked by size before any read; others
    (``/dev/zero``, pipes) are read in chunks."""
    path = Path(path)
    try:
        with open(path, "rb") as stream:
            try:
                size = path.stat().st_size if path.is_file() else 0
            except OSError:
                size = 0
            if size > limit:
                raise error(f"{size} bytes, larger than the limit of {_size_text(limit)} "
                            f"for {what}")
            return _read_chunks(stream, limit, what, error, allow_gzip)
    except OSError as exc:
        raise error(f"cannot read the file: {exc.strerror or exc}") from None


def gunzip_bounded(raw: bytes, limit: int, what: str, error: ErrorFactory) -> bytes:
    """Decompress gzip data (all members), refusing corrupt data and output beyond ``limit``
    as it streams, so that a gzip bomb is refused without allocating its output."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as stream:
            return _read_chunks(stream, limit, f"{what} (uncompressed)", error)
    except (OSError, EOFError, zlib.error) as exc:
        raise error(f"corrupt gzip data: {str(exc)[:ECHO_CHARS]}") from None


def decode_utf8(raw: bytes, error: ErrorFactory) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"not UTF-8 text: {exc.reason} at byte {exc.start}") from None
