"""The IDX file format (MNIST's): reading a file, gzip-compressed or not, and checking its content.

Checksums are of the *decompressed* content, because the ``.gz`` bytes differ between mirrors while
the data does not.
"""

from __future__ import annotations

import hashlib
import math
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nasforge.errors import DataError

__all__ = [
    "GZIP_MAGIC",
    "REFETCH",
    "Gunzip",
    "IdxFile",
    "content_sha256",
    "is_valid",
    "parse_idx",
    "read_content",
    "read_idx",
]

GZIP_MAGIC = b"\x1f\x8b"
_GZIP_WBITS = 16 + zlib.MAX_WBITS  # zlib with a gzip header and trailer (CRC and size are checked)
REFETCH = "delete it and download again"
# IDX type codes (third byte of the magic number); multi-byte values are big-endian.
_IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


@dataclass(frozen=True)
class IdxFile:
    """One file of an IDX dataset.

    Args:
        name: the uncompressed file name; mirrors serve ``name + ".gz"``.
        sha256: hex digest of the decompressed content.
    """

    name: str
    sha256: str


class Gunzip:
    """Incremental gzip decoder over one or more members that knows whether the stream ended cleanly."""

    def __init__(self) -> None:
        self._member = zlib.decompressobj(wbits=_GZIP_WBITS)
        self._fed = False

    def feed(self, data: bytes) -> list[bytes]:
        """Decompress the next compressed bytes; raises zlib.error on corrupt data."""
        out = []
        while data:
            out.append(self._member.decompress(data))
            self._fed = True
            if not self._member.eof:
                break
            data = self._member.unused_data  # the next gzip member, if any
            self._member = zlib.decompressobj(wbits=_GZIP_WBITS)
            self._fed = False
        return out

    @property
    def complete(self) -> bool:
        """False if the last member has started but not reached its end marker (a truncated file)."""
        return not self._fed


def read_content(path: Path) -> tuple[bytes, bool]:
    """Return the (decompressed) content of ``path`` and whether its gzip stream, if any, is complete."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path} does not exist") from None
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not raw.startswith(GZIP_MAGIC):
        return raw, True
    gunzip = Gunzip()
    try:
        pieces = gunzip.feed(raw)
    except zlib.error as exc:
        raise DataError(f"{path} is corrupt: the gzip data does not decode ({exc}); {REFETCH}") from None
    return (pieces[0] if len(pieces) == 1 else b"".join(pieces)), gunzip.complete


def parse_idx(data: bytes, path: Path, complete: bool = True) -> np.ndarray:
    """Parse IDX ``data`` read from ``path`` into a native-endian array, or raise DataError."""
    if len(data) < 4:
        if not complete:
            raise DataError(f"{path} is truncated: its gzip stream ends after {len(data)} bytes; {REFETCH}")
        raise DataError(f"{path} is not an IDX file: it holds only {len(data)} bytes")
    code, ndim = data[2], data[3]
    if data[:2] != b"\0\0" or code not in _IDX_DTYPES or ndim == 0:
        codes = ", ".join(f"0x{c:02x}" for c in _IDX_DTYPES)
        raise DataError(
            f"{path} is not an IDX file: magic number 0x{int.from_bytes(data[:4], 'big'):08x}, expected two "
            f"zero bytes, a type code ({codes}) and the number of dimensions (e.g. 0x00000803 for images, "
            f"0x00000801 for labels)"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(
            f"{path} is truncated: its header announces {ndim} dimensions but ends after {len(data)} bytes; "
            f"{REFETCH}"
        )
    dims = struct.unpack(f">{ndim}I", data[4:header])
    dtype = _IDX_DTYPES[code]
    count = math.prod(dims)
    expected, got = count * dtype.itemsize, len(data) - header
    what = {1: "labels", 3: "pixels"}.get(ndim, "data")
    if got < expected:
        raise DataError(
            f"{path} is truncated: expected {expected:,} bytes of {what} for shape {dims}, got {got:,}; "
            f"{REFETCH}"
        )
    if not complete:
        raise DataError(f"{path} is truncated: its gzip stream ends before its end marker; {REFETCH}")
    if got > expected:
        raise DataError(
            f"{path} is corrupt or not an IDX file: its header announces shape {dims} ({expected:,} bytes of "
            f"{what}), but {got:,} bytes follow the header"
        )
    array = np.frombuffer(data, dtype=dtype, count=count, offset=header).reshape(dims)
    return array.astype(dtype.newbyteorder("="))  # a writable, native-endian copy


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (as used by MNIST), gzip-compressed or not, into a numpy array.

    Compression is detected from the content, not the name. The magic number, type code,
    dimensions and payload size are checked.

    Args:
        path: the file.

    Returns:
        A writable native-endian array with the file's shape and dtype (uint8 for MNIST).

    Raises:
        DataError: naming the file and the problem if it is missing, truncated, corrupt or not IDX.

    Example:
        >>> read_idx("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz").shape  # doctest: +SKIP
        (10000,)
    """
    path = Path(path)
    data, complete = read_content(path)
    return parse_idx(data, path, complete)


def content_sha256(path: Path) -> str:
    """sha256 of the decompressed content of ``path``."""
    data, _ = read_content(path)
    return hashlib.sha256(data).hexdigest()


def is_valid(path: Path, file: IdxFile) -> bool:
    """Whether ``path`` holds ``file``'s content (its decompressed sha256 matches); False if unreadable."""
    try:
        return content_sha256(path) == file.sha256
    except DataError:
        return False
