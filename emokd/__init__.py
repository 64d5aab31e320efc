"""emokd: turn face videos into a reusable feature cache, then train multitask emotion models from it."""

__version__ = "0.1.0"
