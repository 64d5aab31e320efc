"""Facts of the data and of the method, in one place (docs/datasets.md, docs/training.md)."""

SAMPLE_RATE = 22050
AUDIO_WINDOW_S = 10.0
CROP_SIZE = 112

TASKS = ("VA", "EXPR", "AU")
TRAIN_TASKS = ("VA", "EXPR", "AU", "MTL")

EXPR_CLASSES = ("Neutral", "Anger", "Disgust", "Fear", "Happiness", "Sadness", "Surprise", "Other")
AU_NAMES = ("AU1", "AU2", "AU4", "AU6", "AU7", "AU10", "AU12", "AU15", "AU23", "AU24", "AU25", "AU26")
N_EXPR = len(EXPR_CLASSES)
N_AU = len(AU_NAMES)

VA_MISSING = -5.0
EXPR_MISSING = -1
AU_MISSING = -1

SPLITS = ("train", "validation", "test")

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm", ".mpg", ".mpeg", ".wmv", ".flv")

# A video's split per task (docs/datasets.md): ABAW publishes Train_Set / Validation_Set per task, so
# one video can be VA training data and EXPR validation data. "MTL" is the split of the dataset's
# MTL set (ABAW3 MTL_Challenge files) that lists the video, "unlabelled" when none does.
SPLIT_KEYS = ("VA", "EXPR", "AU", "MTL")
SPLIT_VALUES = ("train", "validation", "test", "unlabelled")
MIXED = "mixed"          # summary of a video whose tasks are in different splits


def uniform_splits(split: str) -> dict[str, str]:
    """Per-task splits of a video whose every task is in `split` (datasets with one split per item)."""
    return {**dict.fromkeys(TASKS, split), "MTL": "unlabelled"}


def split_summary(splits: dict[str, str]) -> str:
    """One word for a video's per-task splits: the split all its labelled tasks share, "mixed" when
    they differ, "unlabelled" when it has none."""
    used = {s for s in splits.values() if s != "unlabelled"}
    return used.pop() if len(used) == 1 else (MIXED if used else "unlabelled")

CACHE_SCHEMA_VERSION = 2
