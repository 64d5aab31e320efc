"""Frozen encoders, weight loading and the trainable multitask network. Imports torch only."""
