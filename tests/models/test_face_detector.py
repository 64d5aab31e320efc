"""MTCNN on a real photograph (scikit-image's astronaut, fetched through the weights store) and alignment."""

import numpy as np
import pytest
import torch
from PIL import Image

from emokd.errors import WeightsError
from emokd.models.face_align import TEMPLATE_112, align_face, similarity_transform, warp_affine
from emokd.models.face_detector import build_face_detector, nms
from emokd.models.weights import fetch

# Hand-read from the photo: Eileen Collins' face (hairline to chin, ear to ear) in astronaut.png
FACE_BOX = (175, 55, 270, 180)


@pytest.fixture(scope="module")
def detector():
    return build_face_detector()


@pytest.fixture(scope="module")
def photos():
    paths = fetch(["photo_astronaut", "photo_coffee"])  # pinned scikit-image 0.25.2 files, sha256-checked
    return {name: np.asarray(Image.open(path).convert("RGB")) for name, path in paths.items()}


def iou(a, b):
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_finds_the_face_with_plausible_landmarks(detector, photos):
    found = detector.detect(photos["photo_astronaut"])
    assert len(found) == 1 and found.scores[0] > 0.99
    box, points = found.boxes[0], found.landmarks[0]
    assert iou(box, FACE_BOX) > 0.6, box
    left_eye, right_eye, nose, mouth_left, mouth_right = points
    assert (points[:, 0] > box[0]).all() and (points[:, 0] < box[2]).all()
    assert (points[:, 1] > box[1]).all() and (points[:, 1] < box[3]).all()
    assert left_eye[0] < nose[0] < right_eye[0] and mouth_left[0] < nose[0] < mouth_right[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])
    eye_distance = np.linalg.norm(right_eye - left_eye)
    assert 0.3 < eye_distance / (box[2] - box[0]) < 0.65
    assert abs(left_eye[1] - right_eye[1]) < 0.2 * eye_distance      # upright face


def test_finds_no_face_where_there_is_none(detector, photos):
    assert len(detector.detect(photos["photo_coffee"])) == 0
    assert len(detector.detect(np.full((240, 320, 3), 128, np.uint8))) == 0
    noise = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    assert len(detector.detect(noise)) == 0


def test_aligned_crop_puts_the_landmarks_on_the_template(detector, photos):
    image = photos["photo_astronaut"]
    points = detector.detect(image).landmarks[0]
    crop = align_face(image, points, size=112)
    assert crop.shape == (112, 112, 3) and crop.dtype == np.uint8
    matrix = similarity_transform(points, TEMPLATE_112)
    mapped = points @ matrix[:, :2].T + matrix[:, 2]
    # a similarity cannot remove the face's own shape (a wide smile): residual of a few pixels only
    assert np.linalg.norm(mapped - TEMPLATE_112, axis=1).max() < 7.0
    # detect again on the aligned crop (border-padded so the face is not cut): the landmarks are
    # where the transform sent them, so the crop holds the face at the template's place and scale
    again = detector.detect(np.pad(crop, ((56, 56), (56, 56), (0, 0))))
    assert len(again) == 1
    error = np.linalg.norm(again.landmarks[0] - 56 - mapped, axis=1)
    assert error.max() < 3.0, error


def test_similarity_transform_recovers_a_known_transform():
    angle, scale, shift = np.deg2rad(20), 1.7, np.array([12.0, -5.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    src = TEMPLATE_112
    dst = src @ (scale * rotation).T + shift
    matrix = similarity_transform(src, dst)
    np.testing.assert_allclose(matrix[:, :2], scale * rotation, atol=1e-9)
    np.testing.assert_allclose(matrix[:, 2], shift, atol=1e-9)


def test_warp_affine_identity_and_shift():
    image = np.random.default_rng(1).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    identity = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    np.testing.assert_array_equal(warp_affine(image, identity, 8), image)
    shift = np.array([[1.0, 0, -2], [0, 1.0, -1]])                 # output (u, v) = input (u + 2, v + 1)
    out = warp_affine(image, shift, 8)
    np.testing.assert_array_equal(out[:7, :6], image[1:, 2:])
    assert (out[7] == 0).all() and (out[:, 6:] == 0).all()          # outside the image: black


def test_nms_keeps_the_best_of_overlapping_boxes():
    boxes = torch.tensor([[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30], [0, 0, 5, 5.0]])
    scores = torch.tensor([0.8, 0.9, 0.7, 0.6])
    # IoU(0, 1) = 90 / 110 = 0.82; box 3 lies inside box 0: IoU 0.25, min-overlap 1.0
    assert nms(boxes, scores, 0.5).tolist() == [1, 2, 3]
    assert nms(boxes, scores, 0.5, mode="min").tolist() == [1, 2]
    assert nms(boxes, scores, 0.9).tolist() == [1, 0, 2, 3]


def test_wrong_weights_folder_names_file_and_key(tmp_path, detector):
    with pytest.raises(WeightsError, match="pnet.pt: MTCNN weights file not found"):
        build_face_detector(tmp_path)
    torch.save(detector.pnet.state_dict(), tmp_path / "pnet.pt")
    torch.save(detector.rnet.state_dict(), tmp_path / "rnet.pt")
    state = detector.onet.state_dict()
    state["dense6_3.weight"] = torch.zeros(8, 256)
    torch.save(state, tmp_path / "onet.pt")
    with pytest.raises(WeightsError, match=r"onet.pt: wrong architecture: key 'dense6_3.weight' has shape \(8, 256\)"):
        build_face_detector(tmp_path)
    (tmp_path / "onet.pt").write_bytes(b"not a torch file")
    with pytest.raises(WeightsError, match=r"onet.pt: not a readable PyTorch weights file"):
        build_face_detector(tmp_path)
