"""Readers of databases other than Aff-Wild2, and the multi-database "sources" file.

Each reader returns (items, problems): `VideoItem`s namespaced "<dataset>/<item>" with labels in
emokd's class order (constants.EXPR_CLASSES), still images as one-frame items
(`frame_images=[path]`, `face_boxes` (1, 4) x, y, w, h, no audio), and AFEW-VA clips as image
sequences. `index_sources(path)` combines several databases into one Manifest.
"""

from .affectnet import read_affectnet
from .afew_va import read_afew_va
from .expw import read_expw
from .sources import KINDS, index_sources

__all__ = ["KINDS", "index_sources", "read_affectnet", "read_afew_va", "read_expw"]
