"""Training recipes (see `emokd/train/recipes/base.py` for the interface and how to add one)."""
