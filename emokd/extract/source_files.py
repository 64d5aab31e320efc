"""A task's source video: a local path every worker sees, or an fsspec URL (s3://bucket/clip.mp4).

A URL is copied to the worker's local scratch space in a streamed download (never whole in
memory), decoded there like a local file, and deleted when the task ends, whatever happens. The
identity recorded in the cache is the URL with the object's size and ETag (a local file's: its
absolute path, size, modification time and a hash of its first and last MiB;
emokd/cache/source_identity.py); a changed object changes the identity, so it is re-extracted
like a changed local file. Scratch: `scratch_dir` of the config (environment variables
expanded on the worker, e.g. "$TMPDIR"), else the Dask worker's local directory, else the system's
temporary folder (docs/scaling.md#what-each-worker-needs).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath

from emokd.cache import location
from emokd.cache.source_identity import source_identity  # one definition, shared with verify --sources
from emokd.errors import DataError
from emokd.index.manifest import is_url


def scratch_folder(scratch_dir: str | None = None) -> Path:
    """Where this worker downloads sources: the configured folder, the Dask worker's, or /tmp."""
    if scratch_dir:
        return Path(os.path.expandvars(os.path.expanduser(scratch_dir)))
    with contextlib.suppress(ImportError, ValueError):
        from distributed import get_worker

        return Path(get_worker().local_directory)
    return Path(tempfile.gettempdir())


@contextlib.contextmanager
def local_source(item, storage_options: dict | None = None, scratch_dir: str | None = None):
    """Yields (item whose video_path is a local file, the source identity); a URL is downloaded
    first and its copy deleted on exit."""
    if item.video_path is None or not is_url(item.video_path):
        yield item, source_identity(item.video_path)
        return
    url = str(item.video_path)
    before = source_identity(url, storage_options)
    folder = scratch_folder(scratch_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        workdir = Path(tempfile.mkdtemp(prefix="emokd-source-", dir=folder))
    except OSError as exc:
        raise DataError(f"{url}: cannot create scratch space in {folder} ({exc}); set scratch_dir") from exc
    try:
        local = workdir / (PurePosixPath(url.split("://", 1)[1]).name or "video")
        _download(url, local, storage_options, folder)
        after = source_identity(url, storage_options)
        if after != before or local.stat().st_size != before["size"]:
            raise DataError(f"{url}: the object changed while it was being downloaded; run again")
        yield dataclasses.replace(item, video_path=local), before
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _download(url: str, local: Path, storage_options: dict | None, folder: Path) -> None:
    fs, path = location.filesystem(url, storage_options)
    try:
        with location.store_errors(url):
            fs.get_file(path, str(local))  # streamed in blocks by every fsspec backend
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise DataError(f"{url}: no space left in the scratch folder {folder}; free some or set "
                            "scratch_dir to a larger local disk") from exc
        raise DataError(f"{url}: download failed ({exc})") from exc
