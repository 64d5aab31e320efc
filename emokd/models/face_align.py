"""Landmark-based similarity alignment of a face to an N x N crop.

The five detected points (eyes, nose tip, mouth corners) are mapped onto the standard
112 x 112 five-point template (the one used by ArcFace/InsightFace crops), scaled to N, by the
least-squares similarity transform (rotation, uniform scale, translation; Umeyama 1991);
the crop is resampled bilinearly, pixels outside the image are black.
"""

from __future__ import annotations

import numpy as np

TEMPLATE_112 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                         [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float64)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 matrix M (x' = M @ [x, y, 1]) of the least-squares similarity taking src points to dst."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sigma, vt = np.linalg.svd(cov)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1
    rotation = u @ sign @ vt
    scale = np.trace(np.diag(sigma) @ sign) / (s ** 2).sum(1).mean()
    matrix = np.zeros((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = mu_d - scale * rotation @ mu_s
    return matrix


def warp_affine(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Output pixel centre (u, v) samples the image at inverse(matrix) @ (u, v); bilinear, black outside."""
    full = np.vstack([matrix, [0, 0, 1]])
    inverse = np.linalg.inv(full)[:2]
    v, u = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5  # pixel centres
    x = inverse[0, 0] * u + inverse[0, 1] * v + inverse[0, 2] - 0.5
    y = inverse[1, 0] * u + inverse[1, 1] * v + inverse[1, 2] - 0.5
    height, width = image.shape[:2]
    x0, y0 = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]

    def at(yy, xx):  # the pixel, black outside the image (only the size x size samples are read)
        inside = ((yy >= 0) & (yy < height) & (xx >= 0) & (xx < width))[..., None]
        return np.where(inside, image[np.clip(yy, 0, height - 1), np.clip(xx, 0, width - 1)], 0).astype(np.float64)

    out = (at(y0, x0) * (1 - fx) * (1 - fy) + at(y0, x0 + 1) * fx * (1 - fy)
           + at(y0 + 1, x0) * (1 - fx) * fy + at(y0 + 1, x0 + 1) * fx * fy)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def align_face(image: np.ndarray, landmarks: np.ndarray, size: int = 112,
               template: np.ndarray | None = None) -> np.ndarray:
    """uint8 RGB (H, W, 3) + (K, 2) landmarks -> uint8 (size, size, 3) aligned face.

    `template`: (K, 2) each landmark's place in the 112 x 112 crop, NaN rows for landmarks not
    used (BlazeFace's ear points); default the five-point TEMPLATE_112."""
    landmarks = np.asarray(landmarks, np.float64)
    template = TEMPLATE_112 if template is None else np.asarray(template, np.float64)
    if landmarks.shape != template.shape or landmarks.ndim != 2 or landmarks.shape[1] != 2:
        raise ValueError(f"align_face: expected {template.shape} landmarks, got {landmarks.shape}")
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"align_face: expected an RGB image (H, W, 3), got {image.shape}")
    used = np.isfinite(template).all(axis=1)
    matrix = similarity_transform(landmarks[used], template[used] * (size / 112.0))
    return warp_affine(image, matrix, size)
