"""BlazeFace in torch: the TFLite graph against Google's own runtime (reference rows in
tests/models/data, made by make_blazeface_reference.py), anchors and suppression by hand, and the
detector on the real photos: the face MTCNN finds, none on the coffee cup, keypoints that align."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from emokd.errors import WeightsError
from emokd.models.blazeface import KEYPOINT_TEMPLATES, build_blazeface, ssd_anchors, weighted_nms
from emokd.models.face_align import TEMPLATE_112, similarity_transform

REFERENCE = json.loads((Path(__file__).parent / "data" / "blazeface_litert_reference.json").read_text())
MODEL_FILES = {"full": "face_detection_full_range", "short": "face_detection_short_range"}


@pytest.fixture(scope="module")
def photos():
    from emokd.models.weights import fetch

    try:
        paths = fetch(["photo_astronaut", "photo_coffee", "blazeface_full_range", "blazeface_short_range"])
    except WeightsError as exc:
        pytest.skip(f"pinned files not available here: {exc}")
    return {name: np.asarray(Image.open(paths[name]).convert("RGB")) for name in ("photo_astronaut", "photo_coffee")}


@pytest.fixture(scope="module")
def detectors(photos):
    return {model: build_blazeface(model=model) for model in MODEL_FILES}


def iou(a, b):
    lo, hi = np.maximum(a[:2], b[:2]), np.minimum(a[2:], b[2:])
    inter = np.clip(hi - lo, 0, None).prod()
    return inter / ((a[2:] - a[:2]).prod() + (b[2:] - b[:2]).prod() - inter)


@pytest.mark.parametrize("model", sorted(MODEL_FILES))
def test_graph_equals_the_tflite_runtime(detectors, photos, model):
    ref = REFERENCE[MODEL_FILES[model]]
    size, rows = ref["size"], ref["rows"]
    photo = np.asarray(Image.fromarray(photos["photo_astronaut"]).resize((size, size), Image.BILINEAR), np.float32)
    inputs = {"random": np.random.default_rng(0).uniform(-1, 1, (1, size, size, 3)).astype(np.float32),
              "photo": (photo / 127.5 - 1.0)[None].astype(np.float32)}
    for kind, x in inputs.items():
        with torch.inference_mode():
            regressors, scores = detectors[model].graph(torch.from_numpy(x).permute(0, 3, 1, 2))
        np.testing.assert_allclose(regressors[0, rows].numpy(), ref[f"{kind}_regressors"], rtol=1e-4, atol=3e-4)
        np.testing.assert_allclose(scores[0, rows, 0].numpy(), ref[f"{kind}_scores"], rtol=1e-4, atol=3e-4)
    assert max(ref["photo_scores"]) > 2.0  # the photo's face anchors are in the compared rows


def test_anchors_and_weighted_suppression_by_hand():
    full, short = ssd_anchors(192, (4,), 1), ssd_anchors(128, (8, 16, 16, 16), 2)
    assert full.shape == (2304, 2) and short.shape == (16 * 16 * 2 + 8 * 8 * 6, 2)
    np.testing.assert_allclose(full[:2], [[0.5 / 48, 0.5 / 48], [1.5 / 48, 0.5 / 48]])
    np.testing.assert_allclose(short[:3], [[1 / 32, 1 / 32], [1 / 32, 1 / 32], [3 / 32, 1 / 32]])
    np.testing.assert_allclose(short[512:518], [[1 / 16, 1 / 16]] * 6)
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], np.float32)
    points = np.arange(3 * 6 * 2, dtype=np.float32).reshape(3, 6, 2)
    scores = np.array([0.6, 0.9, 0.7], np.float32)
    out_boxes, out_points, out_scores = weighted_nms(boxes, points, scores)
    # IoU(box0, box1) = 81 / 119 > 0.3: one face, the score-weighted mean of both; box2 alone
    np.testing.assert_allclose(out_scores, [0.9, 0.7])
    np.testing.assert_allclose(out_boxes[0], (boxes[1] * 0.9 + boxes[0] * 0.6) / 1.5, rtol=1e-6)
    np.testing.assert_allclose(out_points[0], (points[1] * 0.9 + points[0] * 0.6) / 1.5, rtol=1e-6)
    np.testing.assert_allclose(out_boxes[1], boxes[2])


@pytest.mark.parametrize("model", sorted(MODEL_FILES))
def test_the_photo_face_agrees_with_mtcnn_and_the_cup_has_none(detectors, photos, model):
    from emokd.models.face_detector import build_face_detector

    mtcnn = build_face_detector().detect(photos["photo_astronaut"])
    found = detectors[model].detect(photos["photo_astronaut"])
    assert len(found) == 1 and found.scores[0] > 0.8 and found.landmarks.shape == (1, 6, 2)
    assert iou(found.boxes[0], mtcnn.boxes[0]) > 0.6
    # eyes and nose within 6 px of MTCNN's (the face is ~90 px wide); keypoint 0 is the eye on the image's left
    np.testing.assert_allclose(found.landmarks[0, :3], mtcnn.landmarks[0, :3], atol=6)
    # BlazeFace's alignment (4 keypoints onto their calibrated places) and MTCNN's put MTCNN's 5
    # landmarks within 4.5 px of each other in the 112x112 crop: both frame the face alike (with the
    # uncalibrated 5-point template instead the mouth corners move by 8-12 px)
    template = KEYPOINT_TEMPLATES[model]
    assert found.template is template
    used = np.isfinite(template).all(axis=1)

    def in_crop(matrix, points):
        return points @ matrix[:, :2].T + matrix[:, 2]

    ours = in_crop(similarity_transform(found.landmarks[0][used], template[used]), mtcnn.landmarks[0])
    theirs = in_crop(similarity_transform(mtcnn.landmarks[0], TEMPLATE_112), mtcnn.landmarks[0])
    assert np.linalg.norm(ours - theirs, axis=1).max() < 4.5
    assert len(detectors[model].detect(photos["photo_coffee"])) == 0


def test_letterbox_maps_back_to_image_pixels(detectors, photos):
    face = photos["photo_astronaut"]
    canvas = np.zeros((600, 1000, 3), np.uint8)
    canvas[40:552, 300:812] = face  # wide frame: bars above and below after letterboxing
    alone, placed = build_blazeface(model="full").detect_many([face, canvas])
    assert len(alone) == 1 and len(placed) == 1
    # the face is ~100 px wide; at the canvas' smaller scale (19 px in the network's input) the
    # detector's own jitter is a few px, a letterbox offset or scale error would be tens to hundreds
    centre = lambda box: (box[:2] + box[2:]) / 2  # noqa: E731
    np.testing.assert_allclose(centre(placed.boxes[0]), centre(alone.boxes[0]) + [300, 40], atol=15)
    np.testing.assert_allclose(placed.landmarks[0, :4], alone.landmarks[0, :4] + [300, 40], atol=15)


def test_decoding_by_hand(detectors):
    """One anchor's raw numbers -> the box and keypoints in image pixels, computed by hand."""
    detector = detectors["full"]
    image = np.zeros((360, 640, 3), np.uint8)
    _, [(sx, sy, left, top)] = detector.letterbox([image])
    assert (sx, sy, left, top) == (0.3, 108 / 360, 0, 42)  # 640x360 -> 192x108, 42 rows of bar above
    raw = np.zeros((2304, 16), np.float32)
    k = 30 * 48 + 10  # anchor at cell (x 10, y 30): centre (10.5, 30.5) / 48 of the input
    raw[k, :4] = [2.0, -4.0, 24.0, 30.0]
    raw[k, 4:] = np.arange(12, dtype=np.float32)
    scores = np.zeros(2304, np.float32)
    scores[k] = 0.9
    found = detector._decode(raw, scores, (sx, sy, left, top))
    cx, cy = 10.5 * 4 + 2.0, 30.5 * 4 - 4.0  # input pixels (stride 4)
    want_box = np.array([cx - 12 - left, cy - 15 - top, cx + 12 - left, cy + 15 - top]) / [sx, sy, sx, sy]
    np.testing.assert_allclose(found.boxes[0], want_box, rtol=1e-5)
    points = (np.array([10.5 * 4, 30.5 * 4]) + np.arange(12).reshape(6, 2) - [left, top]) / [sx, sy]
    np.testing.assert_allclose(found.landmarks[0], points, rtol=1e-5)
    np.testing.assert_allclose(found.scores, [0.9])


def test_wrong_files_are_refused(photos, tmp_path):
    from emokd.models.weights import asset_path

    with pytest.raises(WeightsError, match=r"face_detection_short_range.tflite: not the BlazeFace full-range "
                                           r"model: input \[1, 128, 128, 3\]"):
        build_blazeface(asset_path("blazeface_short_range"), model="full")
    (tmp_path / "x.tflite").write_bytes(b"\x00" * 64)
    with pytest.raises(WeightsError, match=r"x.tflite: not a TFLite model file"):
        build_blazeface(tmp_path / "x.tflite", model="full")
    with pytest.raises(WeightsError, match=r"x.tflite: the BlazeFace cascade takes a folder"):
        build_blazeface(tmp_path / "x.tflite", model="cascade")
    data = asset_path("blazeface_full_range").read_bytes()
    (tmp_path / "cut.tflite").write_bytes(data[: len(data) // 3])
    with pytest.raises(WeightsError, match=r"cut.tflite: truncated"):
        build_blazeface(tmp_path / "cut.tflite", model="full")
