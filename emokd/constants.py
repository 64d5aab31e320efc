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

CACHE_SCHEMA_VERSION = 1
