"""The Zarr feature cache: schema, fingerprint, per-video write/commit, readers, verify/info. No torch.

Layout and attributes: docs/cache_format.md. Entry point: `FeatureCache.create` / `FeatureCache.open`.
"""

from .fingerprint import compute_fingerprint, fingerprint_inputs
from .keys import decode_key, encode_key
from .store import FeatureCache
from .video_writer import VideoWriter

__all__ = ["FeatureCache", "VideoWriter", "compute_fingerprint", "fingerprint_inputs", "encode_key",
           "decode_key"]
