"""A synthetic multi-database cache for the vu2021 recipe, with known ground truth.

A latent emotion state z (8-d) drives everything: expression = argmax(z W_expr) over 7 classes,
valence/arousal = tanh(z W_va); the cached "face embedding" is z A + per-frame noise (what a
frozen encoder gives: informative but noisy). In videos and clips z drifts slowly (AR(1)), so a
temporal head can average the noise out; stills have independent z.

Three training databases, each labelling a different subset of tasks, with noisy labels
(expression flips, valence/arousal jitter), as real annotations are:
  expr_db  stills, EXPR only            (ExpW-like; the most data)
  va_db    short clips, VA only         (AFEW-VA-like; VA is the task seen least)
  both_db  stills, EXPR and VA          (AffectNet-like: the combination task)
and a validation database `target` of videos with both labels, clean (Aff-Wild2-like).
Items go into shards by extraction's packing rule (`emokd.cache.packing.pack`, the same keys):
stills, clips and short videos many to a shard per dataset, videos over `PACK_FRAMES` one a shard.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from emokd.cache import FeatureCache, ItemLabels, ItemSpec, fit_labels
from emokd.cache.packing import PackEntry, pack
from emokd.constants import N_AU

N_CLASSES = 7


@dataclass
class MultiDbSpec:
    latent_dim: int = 8
    face_dim: int = 32
    feature_noise: float = 1.0       # std of the per-frame noise on the embedding (signal std ~1)
    expr_stills: int = 1200
    both_stills: int = 300
    va_clips: int = 8
    clip_frames: int = 40
    val_videos: int = 4
    val_frames: int = 300
    expr_flip: float = 0.2           # fraction of training expression labels replaced at random
    va_jitter: float = 0.15          # std of the noise on training valence/arousal labels
    drift: float = 0.95              # AR(1) coefficient of z along videos and clips
    seed: int = 0


class LatentWorld:
    """The fixed maps of a spec: z -> labels, z -> embedding."""

    def __init__(self, spec: MultiDbSpec):
        rng = np.random.default_rng([spec.seed, 1])
        k = spec.latent_dim
        self.spec = spec
        self.w_expr = rng.standard_normal((k, N_CLASSES))
        self.w_va = rng.standard_normal((k, 2)) / np.sqrt(k) * 1.5
        self.mix = rng.standard_normal((k, spec.face_dim)) / np.sqrt(k)

    def labels(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.tanh(z @ self.w_va).astype(np.float32), (z @ self.w_expr).argmax(1).astype(np.int8)

    def embed(self, z: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        noise = rng.standard_normal((len(z), self.spec.face_dim)) * self.spec.feature_noise
        return (z @ self.mix + noise).astype(np.float16)


def latent_sequence(n: int, k: int, drift: float, rng: np.random.Generator) -> np.ndarray:
    z = np.empty((n, k))
    z[0] = rng.standard_normal(k)
    step = np.sqrt(1 - drift**2)
    for t in range(1, n):
        z[t] = drift * z[t - 1] + step * rng.standard_normal(k)
    return z


def _write_shard(cache: FeatureCache, key: str, items: list[tuple[str, np.ndarray, ItemLabels]]) -> None:
    """Items (id, face embeddings, labels) end to end in one shard."""
    writer = cache.begin_shard(key, [ItemSpec(vid, len(face), dataset=labels.dataset, attrs={"fps": 25.0})
                                     for vid, face, labels in items])
    for vid, face, labels in items:
        n = len(face)
        part = writer.item(vid)
        part.write("face", 0, face)
        part.write("audio", 0, np.zeros((n, 1), np.float16))
        part.write("face_ok", 0, np.ones(n, bool))
        part.write("audio_ok", 0, np.zeros(n, bool))   # stills and image sequences have no audio
        part.write("pts", 0, np.arange(n) / 25.0)
        part.write_labels(labels)
    writer.commit()


def write_multidb_cache(url: str, spec: MultiDbSpec | None = None) -> FeatureCache:
    """Write the cache at `url` (overwriting); returns it open for writing."""
    spec = spec or MultiDbSpec()
    encoders = [{"name": "synthetic_face", "kind": "face", "output_dim": spec.face_dim, "layer": "none",
                 "input_spec": {}, "weights_sha256": "synthetic"},
                {"name": "synthetic_audio", "kind": "audio", "output_dim": 1, "layer": "none",
                 "input_spec": {}, "weights_sha256": "synthetic"}]
    cache = FeatureCache.create(url, {"synthetic_multidb": True, "seed": spec.seed}, {"spec": str(spec)},
                                encoders, overwrite=True)
    world = LatentWorld(spec)
    rng = np.random.default_rng([spec.seed, 2])
    k = spec.latent_dim
    no_au = np.full((1, N_AU), -1, np.int8)

    def noisy(va: np.ndarray, expr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        flip = rng.random(len(expr)) < spec.expr_flip
        expr = np.where(flip, rng.integers(0, N_CLASSES, len(expr)), expr).astype(np.int8)
        va = np.clip(va + rng.normal(0, spec.va_jitter, va.shape), -1, 1).astype(np.float32)
        return va, expr

    items: list[tuple[str, np.ndarray, ItemLabels]] = []

    def add(vid, z, split, dataset, keep_va, keep_expr, clean=False):
        face = world.embed(z, rng)
        va, expr = world.labels(z)
        if not clean:
            va, expr = noisy(va, expr)
        n = len(z)
        va = va if keep_va else np.full((n, 2), np.nan, np.float32)
        expr = expr if keep_expr else np.full(n, -1, np.int8)
        labels = fit_labels(vid, n, va=va, expr=expr, au=np.repeat(no_au, n, 0), split=split, dataset=dataset)
        items.append((vid, face, labels))

    for i in range(spec.expr_stills):
        add(f"expr_db/{i:05d}", rng.standard_normal((1, k)), "train", "expr_db", False, True)
    for i in range(spec.both_stills):
        add(f"both_db/{i:05d}", rng.standard_normal((1, k)), "train", "both_db", True, True)
    for i in range(spec.va_clips):
        add(f"va_db/{i:03d}", latent_sequence(spec.clip_frames, k, spec.drift, rng), "train", "va_db", True, False)
    for i in range(spec.val_videos):
        add(f"target/{i:03d}", latent_sequence(spec.val_frames, k, spec.drift, rng), "validation", "target",
            True, True, clean=True)
    entries = [PackEntry(vid, labels.dataset, len(face)) for vid, face, labels in items]
    for key, group in pack(entries):
        _write_shard(cache, key, [items[i] for i in group])
    return cache
