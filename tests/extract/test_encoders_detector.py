"""The detector path of extraction: BlazeFace batches, and two-person videos without crops, where
`<video>_left` / `<video>_right` take the leftmost / rightmost face of each frame, never the same one."""

from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from emokd.errors import WeightsError
from emokd.extract.faces import FacePicker, align_detection, detect_faces


def dets(*boxes):
    boxes = np.array(boxes, np.float32).reshape(-1, 4)
    return SimpleNamespace(boxes=boxes, scores=np.ones(len(boxes), np.float32), largest=lambda: (
        None if not len(boxes) else int(np.argmax((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])))))


def test_picker_two_faces_one_face_and_a_third_small_face():
    left, right, one = FacePicker("v_left"), FacePicker("v_right"), FacePicker("v")
    a, b, tiny = (10, 10, 60, 60), (200, 20, 260, 80), (120, 5, 130, 15)
    frames = [dets(b, a), dets(b, a, tiny), dets(a), dets(b), dets(), dets((190, 20, 250, 80)),
              dets((70, 10, 120, 60))]
    picks = [(left.pick(d, 320), right.pick(d, 320), one.pick(d, 320)) for d in frames]
    # two faces: left = the box on the left (index 1), right = index 0; the tiny third face never wins
    assert picks[0] == (1, 0, 0) and picks[1] == (1, 0, 0)
    # one face: the side whose last face centre is nearer; the other side has none that frame
    assert picks[2] == (0, None, 0) and picks[3] == (None, 0, 0) and picks[4] == (None, None, None)
    assert picks[5] == (None, 0, 0)
    # a face at x = 95: nearer the left's last centre (35) than the right's (220)
    assert picks[6] == (0, None, 0)


def test_picker_without_history_uses_the_frame_halves():
    assert FacePicker("x_left").pick(dets((10, 0, 50, 40)), 320) == 0
    assert FacePicker("x_right").pick(dets((10, 0, 50, 40)), 320) is None
    assert FacePicker("x_right").pick(dets((250, 0, 290, 40)), 320) == 0


@pytest.fixture(scope="module")
def astronaut():
    from emokd.models.weights import fetch

    try:
        paths = fetch(["photo_astronaut", "blazeface_full_range", "blazeface_short_range"])
    except WeightsError as exc:
        pytest.skip(f"pinned files not available here: {exc}")
    return np.asarray(Image.open(paths["photo_astronaut"]).convert("RGB").resize((256, 256), Image.BILINEAR))


def test_two_people_side_by_side_each_item_gets_its_own_face(astronaut):
    from emokd.models.detectors import build_detector

    detector = build_detector("blazeface_cascade")
    frame = np.zeros((360, 640, 3), np.uint8)
    frame[52:308, 40:296] = astronaut
    frame[52:308, 344:600] = astronaut[:, ::-1]  # the second person: the mirrored face
    found = detector.detect(frame)
    assert len(found) == 2
    centres = (found.boxes[:, 0] + found.boxes[:, 2]) / 2
    lone = np.zeros_like(frame)
    lone[52:308, 40:296] = astronaut
    crops = {side: detect_faces(detector, [frame, lone], 112, FacePicker(f"duo_{side}")) for side in ("left", "right")}
    want_left = align_detection(frame, found, int(np.argmin(centres)), 112)
    want_right = align_detection(frame, found, int(np.argmax(centres)), 112)
    np.testing.assert_array_equal(crops["left"][0], want_left)
    np.testing.assert_array_equal(crops["right"][0], want_right)
    assert np.abs(crops["left"][0].astype(int) - crops["right"][0].astype(int)).mean() > 10  # not one face twice
    # the next frame shows only the left person: the left item keeps it, the right item has no face
    assert crops["left"][1] is not None and crops["right"][1] is None
    # one-person item: the largest face, aligned: the same crop as detect_faces of that detection
    single = detect_faces(detector, [frame], 112)[0]
    np.testing.assert_array_equal(single, align_detection(frame, found, found.largest(), 112))
