"""Annotation files of Aff-Wild2 / ABAW (docs/datasets.md) and generic per-frame label files.

Every reader returns per-frame arrays with the missing values of docs/architecture.md (VA NaN,
EXPR -1, AU -1) and a list of problems, each naming the file and line; a bad line leaves that
frame unlabelled and never stops the reading of the rest.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from emokd.constants import AU_MISSING, AU_NAMES, EXPR_CLASSES, EXPR_MISSING, N_AU, N_EXPR, VA_MISSING, VIDEO_SUFFIXES
from emokd.errors import DataError
from emokd.index.frame_labels import FrameLabels

FIELDS = {"VA": 2, "EXPR": 1, "AU": N_AU}
MTL_FIELDS = 1 + 2 + 1 + N_AU          # image, valence, arousal, expression, 12 AUs
TEST_LIST_HEADERS = ("image", "images", "video", "videos", "name", "names", "path", "file")

# The ABAW release's folders and file names: the one place that spells them
TASK_FOLDERS = {"VA": "VA_Estimation_Challenge", "EXPR": "EXPR_Classification_Challenge",
                "AU": "AU_Detection_Challenge"}
SPLIT_FOLDERS = {"train": "Train_Set", "validation": "Validation_Set"}
MTL_FOLDER = "MTL_Challenge"
MTL_FILES = {"train": "train_set.txt", "validation": "validation_set.txt"}
TASK_HEADERS = {"VA": "valence,arousal", "EXPR": ",".join(EXPR_CLASSES), "AU": ",".join(AU_NAMES)}


def _lines(path: Path) -> list[str]:
    try:
        text = Path(path).read_text(encoding="utf-8-sig", errors="replace")
    except OSError as exc:
        raise DataError(f"{path}: cannot read annotation file ({exc})") from exc
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _valid(task: str, values: np.ndarray) -> bool:
    if task == "VA":
        return bool(np.all((np.abs(values) <= 1.0) | (values == VA_MISSING)))
    if task == "EXPR":
        return bool(np.all((values == EXPR_MISSING) | ((values >= 0) & (values < N_EXPR) & (values % 1 == 0))))
    return bool(np.all(np.isin(values, (AU_MISSING, 0, 1))))


def _store(task: str, out: np.ndarray, row: int, values: np.ndarray) -> None:
    if task == "VA":
        out[row] = np.where(values == VA_MISSING, np.nan, values)
    else:
        out[row] = values


def _empty_task(task: str, n: int) -> np.ndarray:
    if task == "VA":
        return np.full((n, 2), np.nan, np.float32)
    if task == "EXPR":
        return np.full(n, EXPR_MISSING, np.int8)
    return np.full((n, N_AU), AU_MISSING, np.int8)


def read_task_file(path: str | Path, task: str) -> tuple[np.ndarray, list[str]]:
    """One per-task file: a header line, then line k (1-based) = frame k - 1.

    Returns the task's array (VA (n, 2) NaN, EXPR (n,) -1, AU (n, 12) -1) for the n data lines.
    """
    path, fields = Path(path), FIELDS[task]
    lines = _lines(path)
    problems: list[str] = []
    first = 1
    if lines and all(_is_number(v) for v in lines[0].split(",")) and len(lines[0].split(",")) == fields:
        first = 0
        problems.append(f"{path}:1: no header line; reading line 1 as frame 1")
    data = lines[first:]
    out = _empty_task(task, len(data))
    if all(line.count(",") == fields - 1 for line in data):         # fast path: a clean file
        try:
            values = np.array(",".join(data).split(","), dtype=np.float64).reshape(len(data), fields)
        except ValueError:
            values = None
        if values is not None and _valid(task, values):
            if task == "VA":
                values[values == VA_MISSING] = np.nan
            out[:] = values.reshape(out.shape)
            return out, problems
    for row, line in enumerate(data):
        lineno = row + first + 1
        parts = [p.strip() for p in line.split(",")]
        if parts == [""]:
            problems.append(f"{path}:{lineno}: empty line; frame {row + 1} unlabelled")
            continue
        if len(parts) != fields:
            problems.append(f"{path}:{lineno}: expected {fields} field(s) for {task}, got {len(parts)}; "
                            f"frame {row + 1} unlabelled")
            continue
        try:
            values = np.array([float(p) for p in parts])
        except ValueError:
            problems.append(f"{path}:{lineno}: not a number in {line!r}; frame {row + 1} unlabelled")
            continue
        if not _valid(task, values):
            problems.append(f"{path}:{lineno}: value out of range for {task} in {line!r}; "
                            f"frame {row + 1} unlabelled")
            continue
        _store(task, out, row, values.reshape(out.shape[1:]) if out.ndim > 1 else values[0])
    return out, problems


def fit_to_frames(values: np.ndarray, n_frames: int, path: Path, task: str) -> tuple[np.ndarray, list[str]]:
    """Trim extra label lines (a problem naming the file) or leave missing ones unlabelled."""
    if len(values) == n_frames:
        return values, []
    out = _empty_task(task, n_frames)
    m = min(n_frames, len(values))
    out[:m] = values[:m]
    if len(values) > n_frames:
        return out, [f"{path}: {len(values)} label lines for {n_frames} frames; "
                     f"the last {len(values) - n_frames} ignored"]
    return out, []


FRAME_OF_IMAGE = re.compile(r"^(?P<video>.+)/(?P<num>\d+)\.\w+$")


def read_mtl_file(path: str | Path) -> tuple[dict[str, FrameLabels], list[str]]:
    """ABAW3 MTL file: header, then `video/00001.jpg,V,A,EXPR,AU1..AU12` (rows may be partial).

    Returns video name -> labels indexed by 0-based frame (length = highest frame listed).
    """
    path = Path(path)
    lines = _lines(path)
    rows: dict[str, list[tuple[int, np.ndarray, int, np.ndarray]]] = {}
    problems: list[str] = []
    for lineno, line in enumerate(lines[1:], start=2):
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != MTL_FIELDS:
            problems.append(f"{path}:{lineno}: expected {MTL_FIELDS} fields, got {len(parts)}; row skipped")
            continue
        match = FRAME_OF_IMAGE.match(parts[0].replace("\\", "/"))
        if not match or int(match.group("num")) < 1:
            problems.append(f"{path}:{lineno}: {parts[0]!r} is not <video>/NNNNN.jpg; row skipped")
            continue
        try:
            va = np.array(parts[1:3], dtype=np.float64)
            expr = float(parts[3])
            au = np.array(parts[4:], dtype=np.float64)
        except ValueError:
            problems.append(f"{path}:{lineno}: not a number in {line!r}; row skipped")
            continue
        if not (_valid("VA", va) and _valid("EXPR", np.array([expr])) and _valid("AU", au)):
            problems.append(f"{path}:{lineno}: value out of range in {line!r}; row skipped")
            continue
        va = np.where(va == VA_MISSING, np.nan, va)
        rows.setdefault(match.group("video"), []).append((int(match.group("num")) - 1, va, int(expr), au))
    out = {}
    for video, entries in rows.items():
        labels = FrameLabels.empty(max(e[0] for e in entries) + 1)
        for k, va, expr, au in entries:
            labels.va[k], labels.expr[k], labels.au[k] = va, expr, au
        out[video] = labels
    return out, problems


def _test_list_entries(path: Path) -> list[tuple[int, str]]:
    """(1-based line number, first field) of each non-empty line of a test list, header skipped."""
    lines = [(number, line.strip()) for number, line in enumerate(_lines(path), start=1)]
    if lines and lines[0][1].split(",")[0].lower() in TEST_LIST_HEADERS:
        lines = lines[1:]
    return [(number, line.split(",")[0]) for number, line in lines if line]


def read_test_list(path: str | Path) -> list[str]:
    """Entries of a test list (image paths `video/NNNNN.jpg` or video names), header skipped."""
    return [entry for _, entry in _test_list_entries(Path(path))]


def frame_of_entry(entry: str) -> tuple[str, int] | None:
    """`video/NNNNN.jpg` -> (video, NNNNN - 1): crop 00001.jpg is frame 0. None when the entry is not
    a frame path with NNNNN >= 1 (a bare video name, say)."""
    match = FRAME_OF_IMAGE.match(entry.replace("\\", "/"))
    if not match or int(match.group("num")) < 1:
        return None
    return match.group("video"), int(match.group("num")) - 1


def read_test_frames(path: str | Path) -> list[tuple[str, str, int | None]]:
    """(entry as listed, video id, 0-based frame index) per entry of a test list (an ABAW
    submission has one row per entry). A list of frame paths `<video>/NNNNN.jpg` (NNNNN >= 1)
    gives one frame each; a list of video names (`clip` or `clip.mp4`) gives frame None: every
    frame of that video. A first line of neither kind before frame paths is a header. DataError
    naming the line for a frame path with NNNNN < 1, a list that mixes the two kinds, or a list
    without entries."""
    path = Path(path)
    entries = [(number, entry, frame_of_entry(entry)) for number, entry in _test_list_entries(path)]
    if len(entries) > 1 and entries[0][0] == 1 and entries[0][2] is None and entries[1][2] is not None:
        entries = entries[1:]           # a header line of another name than TEST_LIST_HEADERS
    if not entries:
        raise DataError(f"{path}: the test list has no image lines after its header")
    by_frame = entries[0][2] is not None
    out = []
    for number, entry, frame in entries:
        if by_frame and frame is None:
            raise DataError(f"{path}:{number}: {entry!r} is not <video>/<NNNNN>.jpg with NNNNN >= 1 "
                            "(a test list is all frame paths or all video names)")
        if not by_frame and (frame is not None or FRAME_OF_IMAGE.match(entry.replace("\\", "/"))):
            raise DataError(f"{path}:{number}: {entry!r} is a frame path, but the list starts with video "
                            "names (a test list is all frame paths or all video names)")
        out.append((entry, *frame) if by_frame else (entry, _video_of_name(entry), None))
    return out


def _video_of_name(entry: str) -> str:
    """A test list's video name as a video id: `clip.mp4` -> `clip` (other text as it is)."""
    name = entry.replace("\\", "/")
    suffix = Path(name).suffix.lower()
    return name[: -len(suffix)] if suffix in VIDEO_SUFFIXES else name


def videos_of_test_list(entries: list[str]) -> list[str]:
    """Video names of test-list entries, in first-seen order."""
    seen: dict[str, None] = {}
    for entry in entries:
        seen.setdefault(entry.replace("\\", "/").split("/")[0] if "/" in entry else Path(entry).stem, None)
    return list(seen)


INDEX_COLUMNS = ("frame", "time", "timestamp", "image")   # label-file columns that carry no label


def read_label_file(path: str | Path) -> tuple[FrameLabels, list[str]]:
    """Generic per-frame label CSV: a header naming the columns, one row per frame (row 1 = frame 0).

    Recognised columns (any case): valence, arousal; expression (or expr, or the eight class names
    as the header of a one-column file, as Aff-Wild2's EXPR files); AU1 ... AU26. Missing values:
    -5 (VA), -1 (EXPR, AU), or an empty field. Frame/time/image columns are ignored; any other
    column is reported as a problem (a typo such as `AU5` must not pass silently) and ignored.
    """
    path = Path(path)
    lines = _lines(path)
    if not lines:
        raise DataError(f"{path}: empty label file")
    header = [h.strip().lower() for h in lines[0].split(",")]
    classes = [c.lower() for c in EXPR_CLASSES]
    if header == classes:
        header = ["expression"]
    cols = {name: i for i, name in enumerate(header)}
    va_cols = [cols.get("valence"), cols.get("arousal")]
    expr_col = cols.get("expression", cols.get("expr"))
    au_cols = [cols.get(a.lower()) for a in AU_NAMES]
    if all(c is None for c in va_cols + [expr_col] + au_cols):
        raise DataError(f"{path}:1: header names no label column (valence, arousal, expression, AU1...)")
    labels = FrameLabels.empty(len(lines) - 1)
    problems = []
    known = {"valence", "arousal", "expression", "expr", *(a.lower() for a in AU_NAMES), *INDEX_COLUMNS}
    unknown = [name for name in header if name not in known]
    if unknown:
        problems.append(f"{path}:1: unknown label column(s) {unknown} ignored (known: valence, arousal, "
                        f"expression, {', '.join(AU_NAMES)})")
    for row, line in enumerate(lines[1:]):
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != len(header):
            problems.append(f"{path}:{row + 2}: expected {len(header)} fields, got {len(parts)}; "
                            f"frame {row} unlabelled")
            continue
        try:
            def value(col, missing):
                return missing if col is None or parts[col] == "" else float(parts[col])
            va = np.array([value(c, VA_MISSING) for c in va_cols])
            expr = np.array([value(expr_col, EXPR_MISSING)])
            au = np.array([value(c, AU_MISSING) for c in au_cols])
        except ValueError:
            problems.append(f"{path}:{row + 2}: not a number in {line!r}; frame {row} unlabelled")
            continue
        if not (_valid("VA", va) and _valid("EXPR", expr) and _valid("AU", au)):
            problems.append(f"{path}:{row + 2}: value out of range in {line!r}; frame {row} unlabelled")
            continue
        labels.va[row] = np.where(va == VA_MISSING, np.nan, va)
        labels.expr[row], labels.au[row] = int(expr[0]), au
    return labels, problems


def write_task_file(path: str | Path, task: str, values: np.ndarray, va_decimals: int = 4) -> Path:
    """One per-task annotation file as ABAW publishes it: a header line, then line k = frame k,
    missing values as the task's sentinel (VA -5, EXPR and AU -1)."""
    path = Path(path)
    values = np.asarray(values)
    if task == "VA":
        rows = ["-5,-5" if np.isnan(v).any() else f"{v[0]:.{va_decimals}f},{v[1]:.{va_decimals}f}" for v in values]
    elif task == "EXPR":
        rows = [str(int(v)) for v in values]
    else:
        rows = [",".join(str(int(x)) for x in v) for v in values]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([TASK_HEADERS[task]] + rows) + "\n")
    return path
