"""Training recipes (see `emokd/train/recipe.py` for the interface and how to add one)."""
