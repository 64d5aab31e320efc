"""Dataset index, decoding, time alignment, face crops, and the per-video extraction task (DESIGN §1)."""
