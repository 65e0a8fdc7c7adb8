"""Checksummed download of an IDX dataset's files: each file is fetched into a temporary file and
kept only if the sha256 of its decompressed content matches, so a failed download leaves nothing."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

from nasforge.data._idxfile import GZIP_MAGIC, Gunzip, IdxFile, is_valid
from nasforge.errors import DataError

if TYPE_CHECKING:
    from nasforge.data._idx import IdxDataset

__all__ = ["download_files"]

logger = logging.getLogger(__name__)
_TIMEOUT_S = 60.0
_CHUNK = 1 << 20


def _as_base_url(base_url: str) -> str:
    if "://" not in base_url:  # a local directory
        base_url = Path(base_url).expanduser().resolve().as_uri()
    return base_url if base_url.endswith("/") else base_url + "/"


def _fetch(url: str, directory: Path, file: IdxFile) -> Path:
    """Download ``url`` into ``directory`` atomically, keeping it only if its content checksum matches."""
    import urllib.error  # loads http.client and ssl: only when something is downloaded
    import urllib.request

    try:
        fd, part_name = tempfile.mkstemp(dir=directory, prefix=f".{file.name}.", suffix=".part")
    except OSError as exc:
        raise DataError(f"cannot write to {directory}: {exc.strerror or exc}") from None
    part = Path(part_name)
    try:
        sha = hashlib.sha256()
        gunzip: Gunzip | None = None
        first = True
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response:
                while chunk := response.read(_CHUNK):
                    if first:
                        gunzip = Gunzip() if chunk.startswith(GZIP_MAGIC) else None
                        first = False
                    out.write(chunk)
                    for piece in gunzip.feed(chunk) if gunzip else [chunk]:
                        sha.update(piece)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise DataError(f"{url}: download failed ({reason})") from None
        except zlib.error as exc:
            raise DataError(f"{url}: corrupt gzip data ({exc}); the file was not kept") from None
        if gunzip is not None and not gunzip.complete:
            raise DataError(
                f"{url}: the download is truncated (gzip stream ends early); the file was not kept"
            )
        if sha.hexdigest() != file.sha256:
            raise DataError(
                f"{url}: sha256 of the decompressed content is {sha.hexdigest()}, expected {file.sha256} "
                f"(corrupt or a different file); the file was not kept"
            )
        target = directory / (file.name + (".gz" if gunzip is not None else ""))
        os.replace(part, target)
        return target
    finally:
        part.unlink(missing_ok=True)


def download_files(spec: IdxDataset, directory: Path, *, base_url: str | None, force: bool) -> Path:
    """Fetch every file of ``spec`` that ``directory`` lacks (all of them with ``force``) from
    ``base_url`` or else the spec's mirrors in order; a checksum mismatch keeps nothing."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"{spec.name}: cannot create {directory}: {exc.strerror or exc}") from None
    bases = [_as_base_url(url) for url in ([base_url] if base_url is not None else spec.mirrors)]
    for file in spec.files:
        present = [p for p in (directory / file.name, directory / f"{file.name}.gz") if p.is_file()]
        valid = {p: is_valid(p, file) for p in present}
        if any(valid.values()) and not force:
            logger.debug("%s: %s is present and valid", spec.name, file.name)
            continue
        errors = []
        for base in bases:
            url = f"{base}{file.name}.gz"
            logger.info("%s: downloading %s", spec.name, url)
            try:
                saved = _fetch(url, directory, file)
                break
            except DataError as exc:
                errors.append(str(exc))
        else:
            raise DataError(f"{spec.name}: could not download {file.name}.gz: {'; '.join(errors)}")
        for path, ok in valid.items():
            if not ok and path != saved:  # a bad copy would shadow the good one when loading
                path.unlink(missing_ok=True)
    return directory
