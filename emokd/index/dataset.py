"""`index_dataset`: whatever the user names as a dataset -> a Manifest.

A folder is an Aff-Wild2 / ABAW tree (`emokd.index.affwild2`); a .csv/.json file a generic
manifest or a saved one (`emokd.index.generic`); a .yaml/.toml file a multi-database sources file
(`emokd.index.sources`). Formats: docs/datasets.md.
"""

from __future__ import annotations

import logging
from pathlib import Path


from emokd.errors import DataError
from emokd.index.affwild2 import index_affwild2
from emokd.index.manifest import Manifest

log = logging.getLogger(__name__)


def index_dataset(root_or_manifest_file: str | Path, probe: bool = True) -> Manifest:
    """Index a dataset; `probe=False` skips reading frame counts from the videos."""
    path = Path(root_or_manifest_file).expanduser()
    if not path.exists():
        raise DataError(f"{path}: dataset root or manifest file not found")
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


