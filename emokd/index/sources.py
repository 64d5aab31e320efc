"""A "sources" file: several databases, each feeding some tasks, indexed into one Manifest.

```yaml
sources:
  - {name: affwild2, kind: affwild2, root: /data/abaw, tasks: [VA, EXPR], thin: {VA: 5}}
  - {name: expw, kind: expw, root: /data/ExpW, tasks: [EXPR]}
  - {name: afew_va, kind: afew_va, root: /data/AFEW-VA, tasks: [VA], options: {fps: 25}}
  - {name: affectnet, kind: affectnet, root: /data/AffectNet, tasks: [VA, EXPR]}
```

- `tasks`: the labels kept from that source (others are cleared); default all three.
- `thin`: keep the labels of frames 0, k, 2k, ... only, one k for every task or a {task: k}
  table (Vu et al. keep every 5th Aff-Wild2 VA frame). On multi-frame items the labels of the
  other frames are cleared (features are still extracted, they feed the temporal window); on
  one-frame items (stills) every k-th item keeps the label. Only tasks in the training split are
  thinned (a video's splits are per task).
- `name` is the `dataset` of the items (the cache keeps it per item, so a training recipe can
  choose which database feeds which task) and the id namespace `<name>/<item>`; Aff-Wild2 ids stay
  bare. `options` go to the reader (ExpW `split`, `min_confidence`; AFEW-VA `split`, `fps`).
- An id found in two sources (e.g. Aff-Wild2 videos of both the EXPR and VA sets listed twice) is
  one item whose labels are merged per frame, each task keeping the split of the source labelling it.
An item that carried labels and has none left after `tasks`/`thin` is left out.
"""

from __future__ import annotations

import inspect
from dataclasses import replace
from pathlib import Path

import numpy as np

from emokd.config import read_config_file
from emokd.constants import TASKS
from emokd.errors import ConfigError, DataError
from emokd.index.manifest import FrameLabels, Manifest, VideoItem, with_splits
from emokd.index.readers.affectnet import read_affectnet
from emokd.index.readers.afew_va import read_afew_va
from emokd.index.readers.expw import read_expw

KINDS = ("affwild2", "affectnet", "expw", "afew_va", "generic")
READERS = {"affectnet": read_affectnet, "expw": read_expw, "afew_va": read_afew_va}
_FIELD = {"VA": "va", "EXPR": "expr", "AU": "au"}


def _missing(task: str, values: np.ndarray) -> np.ndarray:
    """Per-row mask of missing labels for one task's array."""
    if task == "VA":
        return np.isnan(values).any(axis=1)
    if task == "AU":
        return (values < 0).all(axis=1)
    return values < 0


def _clear(task: str, values: np.ndarray, rows: np.ndarray) -> None:
    values[rows] = np.nan if task == "VA" else -1


def _has_labels(labels: FrameLabels | None) -> bool:
    return labels is not None and any((~_missing(t, getattr(labels, _FIELD[t]))).any() for t in TASKS)


def _parse_thin(value, where: str) -> dict[str, int]:
    table = {task: value for task in TASKS} if isinstance(value, int) else value
    if not isinstance(table, dict) or any(t not in TASKS for t in table):
        raise ConfigError(f"{where}: thin must be an int or a table of {list(TASKS)} -> int, got {value!r}")
    out = {task: int(table.get(task, 1)) for task in TASKS}
    if any(k < 1 for k in out.values()):
        raise ConfigError(f"{where}: thin values must be >= 1, got {value!r}")
    return out


def filter_labels(items: list[VideoItem], tasks: tuple[str, ...], thin: dict[str, int]) -> list[VideoItem]:
    """Keep only `tasks` labels (a dropped task's split becomes "unlabelled", and the MTL set goes
    with any dropped task); of a task in the training split only frames 0, k, 2k, ... (k =
    thin[task]), or every k-th one-frame item."""
    out, still_ordinal = [], 0
    for item in items:
        if item.labels is None:
            out.append(item)
            continue
        had = _has_labels(item.labels)
        splits = item.task_splits()
        arrays = {t: getattr(item.labels, _FIELD[t]).copy() for t in TASKS}
        n = len(arrays["VA"])
        for task in TASKS:
            if task not in tasks:
                _clear(task, arrays[task], np.ones(n, bool))
                splits[task] = "unlabelled"
            elif splits[task] != "train":
                continue                      # thinning is for training; evaluation keeps every frame
            elif n == 1:
                if still_ordinal % thin[task]:
                    _clear(task, arrays[task], np.ones(1, bool))
            else:
                _clear(task, arrays[task], np.arange(n) % thin[task] != 0)
        still_ordinal += n == 1 and "train" in (splits[t] for t in tasks)
        mtl = item.mtl
        if set(TASKS) - set(tasks):
            splits["MTL"], mtl = "unlabelled", None
        labels = FrameLabels(va=arrays["VA"], expr=arrays["EXPR"], au=arrays["AU"])
        if had and not _has_labels(labels):
            continue
        out.append(with_splits(replace(item, labels=labels, mtl=mtl), splits))
    return out


def merge_splits(first: VideoItem, second: VideoItem, where: str, problems: list[str]) -> dict[str, str]:
    """Per task: the split of the item that labels it (`first` when both do; a disagreement is a
    problem)."""
    a, b = first.task_splits(), second.task_splits()
    out = {}
    for task, split in a.items():
        other = b.get(task, "unlabelled")
        if split != "unlabelled" and other not in ("unlabelled", split):
            problems.append(f"{where}: {first.video_id}: {task} is {split} in one source and {other} in "
                            f"another; {split} kept")
        out[task] = split if split != "unlabelled" else other
    return out


def _padded(task: str, values: np.ndarray, n: int) -> np.ndarray:
    out = np.full((n,) + values.shape[1:], np.nan if task == "VA" else -1, values.dtype)
    out[:len(values)] = values
    return out


def merge_labels(first: FrameLabels | None, second: FrameLabels | None) -> tuple[FrameLabels | None, int]:
    """Per-frame union: a task's label comes from `first` where present, else `second`.
    Returns the merged labels and the number of (frame, task) pairs both labelled differently."""
    if first is None or second is None:
        return first if second is None else second, 0
    n = max(len(first.va), len(second.va))
    merged, conflicts = {}, 0
    for task in TASKS:
        a = _padded(task, getattr(first, _FIELD[task]), n)
        b = _padded(task, getattr(second, _FIELD[task]), n)
        a_present = ~_missing(task, a)
        both = a_present & ~_missing(task, b)
        same = np.isclose(a, b) if task == "VA" else a == b
        conflicts += int((both & ~same.reshape(n, -1).all(axis=1)).sum())
        rows = a_present.reshape((n,) + (1,) * (a.ndim - 1))
        merged[task] = np.where(rows, a, b)
    return FrameLabels(va=merged["VA"], expr=merged["EXPR"], au=merged["AU"]), conflicts


def _read_source(entry: dict, base: Path, where: str) -> tuple[list[VideoItem], list[str], dict]:
    kind = entry["kind"]
    root = Path(entry["root"]).expanduser()
    root = root if root.is_absolute() else base / root
    options = dict(entry.get("options") or {})
    name = entry.get("name", kind)
    if kind in READERS:
        reader = READERS[kind]
        allowed = set(inspect.signature(reader).parameters) - {"root", "name"}
        if set(options) - allowed:
            raise ConfigError(f"{where}: bad options {sorted(set(options) - allowed)} for kind {kind}; "
                              f"known: {sorted(allowed)}")
        items, problems = reader(root, name=name, **options)
        return items, problems, {}
    from emokd.index.dataset import index_dataset   # Aff-Wild2 layout or a generic CSV/JSON manifest

    if options:
        raise ConfigError(f"{where}: bad options {sorted(options)}: kind {kind} takes none")
    manifest = index_dataset(root)
    if kind == "generic":
        items = [replace(it, dataset=name, video_id=it.video_id if it.video_id.startswith(f"{name}/")
                         else f"{name}/{it.video_id}") for it in manifest.items]
    else:
        items = [replace(it, dataset=name) for it in manifest.items]   # Aff-Wild2 ids stay bare
    return items, list(manifest.problems), dict(manifest.test_lists)


def index_sources(path: str | Path) -> Manifest:
    """One combined Manifest from a YAML/TOML/JSON sources file (see the module docstring)."""
    path = Path(path)
    data = read_config_file(path)
    entries = data.get("sources") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{path}: expected a non-empty 'sources' list")
    by_id: dict[str, VideoItem] = {}
    problems: list[str] = []
    test_lists: dict[str, list[str]] = {}
    for number, entry in enumerate(entries, start=1):
        where = f"{path}: sources[{number}]"
        if not isinstance(entry, dict) or "kind" not in entry or "root" not in entry:
            raise ConfigError(f"{where}: each source needs 'kind' and 'root', got {entry!r}")
        unknown = sorted(set(entry) - {"name", "kind", "root", "tasks", "thin", "options"})
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {unknown}")
        if entry["kind"] not in KINDS:
            raise ConfigError(f"{where}: kind {entry['kind']!r} is not one of {list(KINDS)}")
        tasks = tuple(entry.get("tasks") or TASKS)
        if any(t not in TASKS for t in tasks):
            raise ConfigError(f"{where}: tasks {list(tasks)} must be among {list(TASKS)}")
        thin = _parse_thin(entry.get("thin", 1), where)
        items, found, tests = _read_source(entry, path.parent, where)
        problems += found
        for key, names in tests.items():
            test_lists.setdefault(key, []).extend(names)
        for item in filter_labels(items, tasks, thin):
            if item.video_id in by_id:
                old = by_id[item.video_id]
                labels, conflicts = merge_labels(old.labels, item.labels)
                mtl = old.mtl if old.mtl is not None else item.mtl
                by_id[item.video_id] = with_splits(replace(old, labels=labels, mtl=mtl),
                                                   merge_splits(old, item, where, problems))
                if conflicts:
                    problems.append(f"{where}: {item.video_id}: {conflicts} frames labelled differently "
                                    f"by two sources; the first source's labels kept")
            else:
                by_id[item.video_id] = item
    if not by_id:
        raise DataError(f"{path}: the sources gave no item")
    return Manifest(items=list(by_id.values()), test_lists=test_lists, problems=problems)
