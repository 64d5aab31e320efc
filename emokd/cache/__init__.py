"""The Zarr feature cache: schema, fingerprint, per-video write/commit, readers, verify/info. No torch.

Layout and attributes: docs/cache_format.md. Entry point: `FeatureCache.create` / `FeatureCache.open`.
"""

from emokd.cache.fingerprint import compute_fingerprint, fingerprint_inputs
from emokd.cache.keys import decode_key, encode_key
from emokd.cache.schema import ArraySpec, video_arrays
from emokd.cache.store import FeatureCache
from emokd.cache.writer import VideoWriter

__all__ = ["ArraySpec", "FeatureCache", "VideoWriter", "compute_fingerprint", "fingerprint_inputs",
           "encode_key", "decode_key", "video_arrays"]
