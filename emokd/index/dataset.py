"""`index_dataset`: whatever the user names as a dataset -> a Manifest.

A folder is an Aff-Wild2 / ABAW tree (`emokd.index.affwild2`); a .csv/.json file a generic
manifest or a saved one (`emokd.index.generic`); a .yaml/.toml file a multi-database sources file
(`emokd.index.sources`). Formats: docs/datasets.md.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from emokd.errors import DataError
from emokd.index.affwild2 import index_affwild2
from emokd.index.manifest import Manifest

log = logging.getLogger(__name__)


def index_dataset(root_or_manifest_file: str | Path, probe: bool = True,
                  dataset_root: str | Path | None = None) -> Manifest:
    """Index a dataset; `probe=False` skips reading frame counts from the videos.

    Every path in the result is absolute (the dataset is named relative to the working directory
    once, here), so caches, runs and remote workers find the files from anywhere. `dataset_root`
    re-roots a manifest whose dataset moved (`Manifest.rerooted`)."""
    path = Path(os.path.abspath(Path(root_or_manifest_file).expanduser()))
    if not path.exists():
        raise DataError(f"{path}: dataset root or manifest file not found")
    manifest = _index(path, probe)
    if dataset_root is not None:
        manifest = manifest.rerooted(Path(os.path.abspath(Path(dataset_root).expanduser())), source=path)
    return manifest


def _index(path: Path, probe: bool) -> Manifest:
    if path.is_dir():
        return index_affwild2(path, probe=probe)
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml", ".toml"):
        from emokd.index.sources import index_sources

        return index_sources(path)
    if suffix in (".json", ".csv"):
        from emokd.index.generic import index_generic

        return index_generic(path, probe=probe)
    raise DataError(f"{path}: expected a dataset folder, a .csv/.json manifest or a .yaml/.toml sources file")


