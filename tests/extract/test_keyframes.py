"""`detect_every` (emokd/extract/keyframes.py) on the path the face stage runs (`iter_face_batches`
on a decoded video): a stub detector reads each frame's drawn index and returns a face whose box and
landmarks move linearly with it, so interpolated landmarks must equal the per-frame ones."""

import numpy as np
import pytest

from emokd.extract.faces import iter_face_batches
from emokd.extract.keyframes import PickedFace, same_face
from emokd.extract.timing import probe_item
from emokd.index.manifest import VideoItem
from emokd.models import face_align
from emokd.testing.videos import make_video, read_frame_index

N_FRAMES = 11           # K = 4: keyframes 0, 4, 8 and the last frame, 10
SIZE = (128, 96)


class Detections:
    def __init__(self, faces):
        self.boxes = np.array([f[0] for f in faces], np.float32).reshape(-1, 4)
        self.landmarks = np.array([f[1] for f in faces], np.float32).reshape(-1, 5, 2)
        self.scores = np.ones(len(faces), np.float32)
        self.template = None

    def largest(self):
        return int(np.argmax((self.boxes[:, 2] - self.boxes[:, 0]))) if len(self.boxes) else None


def face_at(cx: float, cy: float, width: float = 30.0):
    box = [cx - width / 2, cy - width / 2, cx + width / 2, cy + width / 2]
    points = [[cx - 6, cy - 4], [cx + 6, cy - 4], [cx, cy + 1], [cx - 5, cy + 7], [cx + 5, cy + 7]]
    return box, points


class MovingFaces:
    """Faces at x = x0 + dx * frame (one per entry of `tracks`); none on the frames in `missing`; the
    face of track 0 jumps by `jump` px from frame `jump_at` on. Counts the frames it detects."""

    def __init__(self, tracks=((30.0, 2.0),), missing=(), jump_at=None, jump=0.0, at=None):
        self.tracks, self.missing, self.jump_at, self.jump = tracks, set(missing), jump_at, jump
        self.at = at or {}      # frame -> the x of its faces, instead of the tracks
        self.seen: list[int] = []

    def detect(self, image):
        k = read_frame_index(image)
        self.seen.append(k)
        if k in self.missing:
            return Detections([])
        if k in self.at:
            return Detections([face_at(x, 70 + 0.5 * k) for x in self.at[k]])
        shift = self.jump if self.jump_at is not None and k >= self.jump_at else 0.0
        return Detections([face_at(x0 + dx * k + (shift if t == 0 else 0.0), 70 + 0.5 * k)
                           for t, (x0, dx) in enumerate(self.tracks)])


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return make_video(tmp_path_factory.mktemp("keyframes") / "v.mp4", N_FRAMES, 25, SIZE, audio=None).path


@pytest.fixture
def aligned(monkeypatch):
    """frame index -> the landmarks each aligned crop was made on (the real alignment still runs)."""
    seen: dict[int, np.ndarray] = {}
    real = face_align.align_face

    def recording(image, landmarks, **kwargs):
        seen[read_frame_index(image)] = np.asarray(landmarks, np.float64)
        return real(image, landmarks, **kwargs)

    monkeypatch.setattr(face_align, "align_face", recording)
    return seen


def run(video, detector, every, video_id="v", batch_size=3):
    item = VideoItem(video_id, video, None, None, "unlabelled")
    batches = list(iter_face_batches(item, probe_item(item), batch_size, crop_size=32, detector=detector,
                                     detect_every=every))
    assert np.array_equal(np.concatenate([b.index for b in batches]), np.arange(N_FRAMES))
    return np.concatenate([b.faces for b in batches]), np.concatenate([b.face_ok for b in batches])


def per_frame_and_keyframes(video, aligned, every=4, video_id="v", **stub):
    """(faces, ok, landmarks, frames detected) with every frame detected, then with `every`."""
    out = []
    for k in (1, every):
        aligned.clear()
        detector = MovingFaces(**stub)
        faces, ok = run(video, detector, k, video_id)
        out.append((faces, ok, dict(aligned), detector.seen))
    return out


def assert_same_faces(one, keyed):
    np.testing.assert_array_equal(one[1], keyed[1])
    assert sorted(one[2]) == sorted(keyed[2])
    for k in one[2]:
        np.testing.assert_allclose(keyed[2][k], one[2][k], atol=1e-4)
    assert np.abs(one[0].astype(int) - keyed[0].astype(int)).max() <= 1


def test_linear_motion_interpolates_to_the_per_frame_landmarks(video, aligned):
    one, keyed = per_frame_and_keyframes(video, aligned)
    assert one[3] == list(range(N_FRAMES))
    assert keyed[3] == [0, 4, 8, 10]                     # keyframes only, the last frame included
    assert keyed[1].all() and len(keyed[2]) == N_FRAMES
    assert_same_faces(one, keyed)
    np.testing.assert_allclose(keyed[2][5][0], [30 + 2 * 5 - 6, 70 + 2.5 - 4], atol=1e-4)


def test_a_keyframe_without_a_face_detects_the_frames_around_it_one_by_one(video, aligned):
    one, keyed = per_frame_and_keyframes(video, aligned, missing=(4,))
    assert sorted(keyed[3]) == [k for k in range(N_FRAMES) if k != 9]   # 1-3 and 5-7 one by one
    assert keyed[1].tolist() == [k != 4 for k in range(N_FRAMES)]
    assert_same_faces(one, keyed)


def test_an_in_between_frame_without_a_face_gets_the_interpolated_one(video, aligned):
    """Frame 6 has no face but its keyframes do: interpolation gives it one (the documented rule:
    only keyframes are looked at); the face is the interpolated one."""
    _, keyed = per_frame_and_keyframes(video, aligned, missing=(6,))
    assert keyed[3] == [0, 4, 8, 10] and keyed[1].all()
    np.testing.assert_allclose(keyed[2][6][0], [30 + 12 - 6, 73 - 4], atol=1e-4)


def test_a_face_that_jumps_is_not_interpolated(video, aligned):
    one, keyed = per_frame_and_keyframes(video, aligned, jump_at=6, jump=60.0)
    assert sorted(keyed[3]) == [0, 4, 5, 6, 7, 8, 10]       # 4 -> 8 moved 68 px, boxes 30 wide
    assert_same_faces(one, keyed)


def test_left_and_right_items_keep_their_sides(video, aligned):
    tracks = ((20.0, 1.0), (100.0, -1.5))
    for side, (x0, dx) in (("left", tracks[0]), ("right", tracks[1])):
        one, keyed = per_frame_and_keyframes(video, aligned, video_id=f"v_{side}", tracks=tracks)
        assert keyed[3] == [0, 4, 8, 10]
        assert_same_faces(one, keyed)
        for k, points in keyed[2].items():                  # the nose of this side's face
            np.testing.assert_allclose(points[2], [x0 + dx * k, 71 + 0.5 * k], atol=1e-4)


def test_the_picker_sees_the_frames_before_a_keyframe_again_in_order(video, aligned):
    """Frames 1-4 show only the right person, moving left fast. Picked with what frame 0 told, the
    lone face of keyframe 4 would go to the left; so the right item detects 1-3 one by one, and the
    picker, rolled back to frame 0, must give them (and then 4) to the right as with K = 1."""
    at = {1: [90.0], 2: [80.0], 3: [62.0], 4: [52.0]}
    for side in ("left", "right"):
        one, keyed = per_frame_and_keyframes(video, aligned, video_id=f"v_{side}",
                                             tracks=((20.0, 0.0), (100.0, 0.0)), at=at)
        assert one[1][1:5].tolist() == [side == "right"] * 4
        assert sorted(keyed[3]) == list(range(9)) + [10]
        assert_same_faces(one, keyed)


def test_every_frame_a_keyframe_when_k_divides_the_last(video, aligned):
    _, keyed = per_frame_and_keyframes(video, aligned, every=5)
    assert keyed[3] == [0, 5, 10] and keyed[1].all()
    _, keyed = per_frame_and_keyframes(video, aligned, every=20)
    assert keyed[3] == [0, 10] and keyed[1].all()


def test_same_face_rule():
    a = PickedFace(np.array([0, 0, 30, 30.0]), None, None)
    near = PickedFace(np.array([30, 0, 60, 30.0]), None, None)      # centres one width apart
    far = PickedFace(np.array([31, 0, 61, 30.0]), None, None)
    assert same_face(a, near) and not same_face(a, far)
    assert not same_face(a, PickedFace(near.box, np.zeros((5, 2)), None))


def test_the_flag_refuses_k_below_1(tmp_path):
    from click.testing import CliRunner

    from emokd.cli import main

    result = CliRunner().invoke(main, ["extract-features", str(tmp_path), "--cache", str(tmp_path / "c.zarr"),
                                       "--detect-every", "0"])
    assert result.exit_code == 2 and "--detect-every" in result.output and not (tmp_path / "c.zarr").exists()
