"""Datasets over the cache, losses, metrics, the teacher/student loop, evaluation and prediction."""
