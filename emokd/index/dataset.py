"""`index_dataset`: an Aff-Wild2 / ABAW tree, a generic CSV/JSON manifest, a saved manifest, or a
multi-database sources file (.yaml/.toml, read by `pipeline.datasets`) -> a Manifest.

Aff-Wild2 (DESIGN §2): videos at any depth; `<X>_left` / `<X>_right` annotation names share the
video `<X>`; per-task files (VA, EXPR, AU; Train_Set / Validation_Set) and the MTL files are
merged per frame (a frame keeps every label any file gives it; per-task files win over MTL on a
disagreement, which is reported). Labels are fitted to the container's frame count: extra lines
are dropped with a problem naming the file, missing lines stay unlabelled. A bad file or line is
a problem in `Manifest.problems`; the index of everything else completes.
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


