"""A synthetic feature cache whose labels are a known function of the embeddings (tests, benchmarks).

Every frame gets random face and audio embeddings; with z = [face, audio] and fixed random
projections W: valence/arousal = tanh(z W_va), expression = argmax(z W_expr), AU_k = [z w_k > 0].
Each task's labels are then removed at random (`missing` per task), a few frames lose their face
(`no_face`: face_ok False, embedding zeroed, as extraction writes them), and videos are split into
train / validation. With `temporal_s` > 0 the labels are instead that function of a latent which
drifts smoothly in time (Gaussian-filtered noise, sigma = temporal_s seconds at 30 fps), and each
frame's embedding is the latent plus `feature_noise` of independent noise: affect that changes
slowly, seen through noisy per-frame features (what temporal smoothing of predictions exploits).

`one_task_per_video` makes it look like the ABAW per-task sets: video v carries only the labels of
task (VA, EXPR, AU)[v % 3]; with `task_shift` > 0 the face embeddings of a task's videos are moved by
that task's own offset (a fixed random direction times `task_shift`), so the tasks' data differ in
distribution as different source videos do, which is what a task discriminator can pick up.
Written with the public cache API (FeatureCache.create / begin_video / write /
commit / write_labels), so it exercises the same path as a real cache.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from emokd.cache.store import FeatureCache
from emokd.constants import N_AU, N_EXPR, TASKS


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
    temporal_s: float = 0.0      # > 0: labels follow a latent that drifts over about this many seconds
    feature_noise: float = 1.0   # with temporal_s: embeddings = that latent + this much per-frame noise
    one_task_per_video: bool = False
    task_shift: float = 0.0


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


def smooth_latent(rng: np.random.Generator, n: int, d: int, sigma_frames: float) -> np.ndarray:
    """(n, d) white noise filtered by a Gaussian of `sigma_frames`, rescaled to unit variance."""
    radius = int(np.ceil(3 * sigma_frames))
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma_frames) ** 2)
    noise = rng.standard_normal((n + 2 * radius, d))
    latent = np.stack([np.convolve(noise[:, j], kernel, mode="valid") for j in range(d)], 1)
    return (latent / latent.std(0, keepdims=True)).astype(np.float32)


def write_synthetic_cache(url: str, spec: SyntheticSpec | None = None) -> FeatureCache:
    spec = spec or SyntheticSpec()
    encoders = [
        {"name": "synthetic_face", "kind": "face", "output_dim": spec.face_dim, "layer": "none",
         "input_spec": {}, "weights_sha256": "synthetic"},
        {"name": "synthetic_audio", "kind": "audio", "output_dim": spec.audio_dim, "layer": "none",
         "input_spec": {}, "weights_sha256": "synthetic"},
    ]
    settings = {"synthetic": True, "seed": spec.seed, "frames_per_video": spec.frames_per_video}
    cache = FeatureCache.create(url, settings, {"spec": str(spec)}, encoders, overwrite=True,
                                set_names={"face": "face", "audio": "audio"})   # sets named by kind
    labels_of = label_function(spec)
    rng = np.random.default_rng([spec.seed, 2])
    offsets = np.random.default_rng([spec.seed, 3]).standard_normal((len(TASKS), spec.face_dim))
    offsets *= spec.task_shift / np.linalg.norm(offsets, axis=1, keepdims=True)
    n_val = max(1, round(spec.n_videos * spec.validation_fraction))
    n = spec.frames_per_video
    for v in range(spec.n_videos):
        vid = f"synthetic/video{v:03d}"
        if spec.temporal_s > 0:     # affect changes slowly; each frame's embedding sees it through noise
            latent = smooth_latent(rng, n, spec.face_dim + spec.audio_dim, spec.temporal_s * 30.0)
            va, expr, au = labels_of(latent)
            z = (latent + spec.feature_noise * rng.standard_normal(latent.shape)).astype(np.float16)
            face, audio = z[:, :spec.face_dim].copy(), z[:, spec.face_dim:].copy()
        else:
            face = rng.standard_normal((n, spec.face_dim))
            if spec.one_task_per_video:
                face = face + offsets[v % len(TASKS)]
            face = face.astype(np.float16)
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
        if spec.one_task_per_video:
            task = TASKS[v % len(TASKS)]
            if task != "VA":
                va[:] = np.nan
            if task != "EXPR":
                expr[:] = -1
            if task != "AU":
                au[:] = -1
        split = "validation" if v >= spec.n_videos - n_val else "train"
        cache.write_labels(vid, va=va, expr=expr, au=au, split=split, dataset="synthetic")
    return cache
