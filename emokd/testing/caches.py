"""A synthetic feature cache whose labels are a known function of the embeddings (tests, benchmarks).

Every frame gets random face and audio embeddings; with z = [face, audio] and fixed random
projections W: valence/arousal = tanh(z W_va), expression = argmax(z W_expr), AU_k = [z w_k > 0].
Each task's labels are then removed at random (`missing` per task), a few frames lose their face
(`no_face`: face_ok False, embedding zeroed, as extraction writes them), and videos are split into
train / validation. Written with the public cache API (FeatureCache.create / begin_video / write /
commit / write_labels), so it exercises the same path as a real cache.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from emokd.cache.store import FeatureCache
from emokd.constants import N_AU, N_EXPR


@dataclass
class SyntheticSpec:
    n_videos: int = 8
    frames_per_video: int = 400
    face_dim: int = 16
    audio_dim: int = 8
    missing: dict[str, float] = field(default_factory=lambda: {"VA": 0.5, "EXPR": 0.5, "AU": 0.5})
    no_face: float = 0.05
    validation_fraction: float = 0.25
    seed: int = 0


def label_function(spec: SyntheticSpec):
    """The fixed map z -> (va, expr, au) of this spec (same seed, same map)."""
    rng = np.random.default_rng([spec.seed, 1])
    d = spec.face_dim + spec.audio_dim
    w_va = rng.standard_normal((d, 2)) * 1.5 / np.sqrt(d)
    w_expr = rng.standard_normal((d, N_EXPR))
    w_au = rng.standard_normal((d, N_AU))

    def labels(z: np.ndarray):
        return (np.tanh(z @ w_va).astype(np.float32), (z @ w_expr).argmax(1).astype(np.int8),
                (z @ w_au > 0).astype(np.int8))
    return labels


def write_synthetic_cache(url: str, spec: SyntheticSpec | None = None) -> FeatureCache:
    spec = spec or SyntheticSpec()
    encoders = [
        {"name": "synthetic_face", "kind": "face", "output_dim": spec.face_dim, "layer": "none",
         "input_spec": {}, "weights_sha256": "synthetic"},
        {"name": "synthetic_audio", "kind": "audio", "output_dim": spec.audio_dim, "layer": "none",
         "input_spec": {}, "weights_sha256": "synthetic"},
    ]
    settings = {"synthetic": True, "seed": spec.seed, "frames_per_video": spec.frames_per_video}
    cache = FeatureCache.create(url, settings, {"spec": str(spec)}, encoders, overwrite=True)
    labels_of = label_function(spec)
    rng = np.random.default_rng([spec.seed, 2])
    n_val = max(1, round(spec.n_videos * spec.validation_fraction))
    n = spec.frames_per_video
    for v in range(spec.n_videos):
        vid = f"synthetic/video{v:03d}"
        face = rng.standard_normal((n, spec.face_dim)).astype(np.float16)
        audio = rng.standard_normal((n, spec.audio_dim)).astype(np.float16)
        z = np.concatenate([face, audio], 1).astype(np.float32)
        va, expr, au = labels_of(z)
        face_ok = rng.random(n) >= spec.no_face
        face[~face_ok] = 0
        writer = cache.begin_video(vid, n, {"fps": 30.0})  # arrays sized from the encoder records
        writer.write("face", 0, face)
        writer.write("audio", 0, audio)
        writer.write("face_ok", 0, face_ok)
        writer.write("audio_ok", 0, np.ones(n, bool))
        writer.write("pts", 0, np.arange(n) / 30.0)
        writer.commit()
        va[rng.random(n) < spec.missing.get("VA", 0)] = np.nan
        expr[rng.random(n) < spec.missing.get("EXPR", 0)] = -1
        au[rng.random(n) < spec.missing.get("AU", 0)] = -1
        split = "validation" if v >= spec.n_videos - n_val else "train"
        cache.write_labels(vid, va=va, expr=expr, au=au, split=split, dataset="synthetic")
    return cache
