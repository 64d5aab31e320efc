"""Apply a trained run to videos that are in no dataset: `emokd predict-video` (docs/predict_video.md).

The run's own extraction settings (stored in its checkpoint) extract the new videos into a cache,
the model predicts every frame, and per-frame CSVs (optionally an ABAW submission file) are written.
Imports extract and train (it needs both), as inspect does.
"""
