"""Readers of databases other than Aff-Wild2 (used by `emokd.index.sources`).

Each reader returns (items, problems): `VideoItem`s namespaced "<dataset>/<item>" with labels in
emokd's class order (constants.EXPR_CLASSES), still images as one-frame items
(`frame_images=[path]`, `face_boxes` (1, 4) x, y, w, h, no audio), and AFEW-VA clips as image
sequences.
"""
