"""iter_face_batches (the face stage's iterator): crop files (1-based), detector path, image
sequences with boxes, bad crops; always on the item's one probe (`probe_item`), as the task runs it."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from emokd.extract.audio import load_audio
from emokd.extract.faces import box_crop, iter_face_batches
from emokd.extract.timing import audio_ok, probe_item, window_end_samples, window_samples
from emokd.index.crop_files import crop_path, list_crops
from emokd.index.dataset import index_dataset
from emokd.models.audio_windows import audio_windows
from emokd.index.manifest import VideoItem
from emokd.testing.videos import draw_frame, make_video, read_frame_index
from emokd.testing.affwild2_tree import write_affwild2_tree


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return write_affwild2_tree(tmp_path_factory.mktemp("affwild2"))


def collect(item, batch_size=8, **kwargs):
    batches = list(iter_face_batches(item, probe_item(item), batch_size, **kwargs))
    return batches, {k: np.concatenate([getattr(b, k) for b in batches]) for k in ("index", "pts", "faces", "face_ok")}


def test_crop_00001_is_frame_0_is_label_line_1(tree):
    """Aff-Wild2's numbering: crop 00001.jpg <-> decoded frame 0 <-> label line 1 (docs/datasets.md)."""
    assert crop_path(Path("x"), 0).name == "00001.jpg"
    item = index_dataset(tree.root).by_id()["vid_a"]
    batches, got = collect(item, 8)
    assert [len(b.index) for b in batches] == [8] * 5 + [5]
    assert np.array_equal(got["index"], np.arange(45))
    assert np.flatnonzero(~got["face_ok"]).tolist() == [3, 17]              # the crop gaps
    assert not got["faces"][[3, 17]].any()
    for k in np.flatnonzero(got["face_ok"]):
        assert read_frame_index(got["faces"][k]) == k                          # crop k+1 shows frame k
    np.testing.assert_allclose(got["pts"], np.arange(45) / 30, atol=1e-9)
    # the crop of frame k and the decoded frame k show the same index
    _, frames = collect(VideoItem("vid_a", item.video_path, None, None, "train"), 16)
    assert [read_frame_index(f) for f in frames["faces"]] == list(range(45))
    # label line 1 (after the header) is row 0
    va_file = tree.root / "annotations" / "VA_Estimation_Challenge" / "Train_Set" / "vid_a.txt"
    lines = va_file.read_text().splitlines()
    for k in (0, 1, 44):
        v, a = (float(x) for x in lines[k + 1].split(","))
        expected = [np.nan, np.nan] if v == -5 else [v, a]
        np.testing.assert_allclose(item.labels.va[k], expected)
    # the audio stage gets one window per frame from the same probe
    probe = probe_item(item)
    track = load_audio(item.video_path, probe.info)
    ends = window_end_samples(probe.info)
    assert audio_windows(track.signal, ends[batches[0].index], window_samples()).shape == (8, 220500)
    assert audio_ok(track, ends[batches[0].index]).all()


def test_crop_folder_with_non_image_and_corrupt_crop(tmp_path, tree, caplog):
    crop_dir = tmp_path / "crops"
    crop_dir.mkdir()
    for k in range(6):
        Image.fromarray(draw_frame(k, (112, 112))).save(crop_dir / f"{k + 1:05d}.jpg")
    (crop_dir / "00003.jpg").write_bytes(b"garbage")
    (crop_dir / "readme.md").write_text("x")
    crops, problems = list_crops(crop_dir)
    assert sorted(crops) == list(range(6)) and problems == [f"{crop_dir / 'readme.md'}: not a crop image "
                                                            "(expected NNNNN.jpg, .jpeg or .png), ignored"]
    video = make_video(tmp_path / "v.mp4", 6, 25, (64, 48), audio=None)
    _, got = collect(VideoItem("v", video.path, crop_dir, None, "train"), 4)
    assert got["face_ok"].tolist() == [True, True, False, True, True, True]
    assert str(crop_dir / "00003.jpg") in caplog.text


class FakeDetector:
    """Finds the synthetic cartoon face: a box around the lower 40 % of the centre square, on even frames."""

    @dataclass
    class Detections:
        boxes: np.ndarray
        scores: np.ndarray
        landmarks: np.ndarray

    def __init__(self):
        self.calls = 0

    def detect(self, image):
        self.calls += 1
        index = read_frame_index(image)
        h, w = image.shape[:2]
        if index % 2:
            return self.Detections(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2)))
        cx, top = w / 2, 0.6 * h
        box = np.array([[cx - 20, top, cx + 20, h]], np.float32)
        fh = h - top
        points = np.array([[[cx - 6, top + 0.35 * fh], [cx + 6, top + 0.35 * fh], [cx, top + 0.5 * fh],
                            [cx - 5, top + 0.7 * fh], [cx + 5, top + 0.7 * fh]]], np.float32)
        return self.Detections(box, np.array([0.9], np.float32), points)


def test_detector_path_decodes_each_frame_once(tmp_path):
    video = make_video(tmp_path / "f.mp4", 10, 30, (96, 80), face=True, audio=None)
    detector = FakeDetector()
    _, got = collect(VideoItem("f", video.path, None, None, "unlabelled"), 4, crop_size=32, detector=detector)
    assert detector.calls == 10                                 # one detection per frame: no frame twice
    assert got["face_ok"].tolist() == [k % 2 == 0 for k in range(10)]
    assert got["faces"].shape == (10, 32, 32, 3) and not got["faces"][1::2].any()
    assert got["faces"][0].mean() > 20                          # something was cropped


def test_real_detector_on_a_photo_video(tmp_path):
    from emokd.errors import WeightsError

    try:
        from emokd.models.face_detector import build_face_detector
        from emokd.models.weights import fetch

        detector = build_face_detector()
        photo = np.asarray(Image.open(fetch(["photo_astronaut"])["photo_astronaut"]).convert("RGB"))
    except (ImportError, WeightsError) as exc:
        pytest.skip(f"face detector weights not available: {exc}")
    import av

    photo = photo[:256, 64:320]                                  # 256 x 256 around the face
    path = tmp_path / "astronaut.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width = stream.height = 256
        stream.pix_fmt = "yuv420p"
        for k, image in enumerate([photo, photo, np.full_like(photo, 128)]):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            frame.pts = k
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    _, got = collect(VideoItem("a", path, None, None, "unlabelled"), 2, detector=detector)
    assert got["face_ok"].tolist() == [True, True, False]
    assert got["faces"].shape == (3, 112, 112, 3) and got["faces"][0].std() > 20


def test_image_sequence_with_boxes_and_missing_image(tmp_path):
    paths = []
    for k in range(3):
        image = np.zeros((60, 80, 3), np.uint8)
        image[10:30, 20:40] = 50 * (k + 1)                     # the "face" is the bright square
        paths.append(tmp_path / f"{k}.png")
        Image.fromarray(image).save(paths[-1])
    paths.append(tmp_path / "missing.png")
    boxes = np.array([[20, 10, 20, 20]] * 4, np.float32)
    item = VideoItem("seq", None, None, None, "train", "afew_va", frame_images=paths, face_boxes=boxes, fps=25.0)
    _, got = collect(item, 3, crop_size=16)
    assert got["face_ok"].tolist() == [True, True, True, False]
    for k in range(3):
        assert (got["faces"][k] == 50 * (k + 1)).all()          # exactly the box, resized
    np.testing.assert_allclose(got["pts"], np.arange(4) / 25)
    assert probe_item(item).info is None                      # no media file: the audio stage writes no audio
    still = VideoItem("still", None, None, None, "train", "expw", frame_images=paths[:1])
    _, got = collect(still, 2, crop_size=16)
    assert got["face_ok"].tolist() == [True] and got["pts"].tolist() == [0.0]   # a still is one frame at t = 0


def test_box_crop_pads_outside_the_image():
    image = np.full((10, 10, 3), 200, np.uint8)
    crop = box_crop(image, (5, 5, 10, 10), 10)                  # half outside
    assert (crop[:5, :5] == 200).all() and (crop[5:, 5:] == 0).all()
    assert box_crop(image, (50, 50, 5, 5), 8) is None and box_crop(image, (0, 0, 0, 5), 8) is None


def test_scaled_decode_size_keeps_the_aspect():
    from emokd.extract.faces import scaled_size

    assert scaled_size(640, 360, 112) == (200, 112)
    assert scaled_size(1280, 720, 112) == (200, 112)
    assert scaled_size(360, 640, 112) == (112, 200)
    assert scaled_size(96, 72, 64) == (86, 64)
    assert scaled_size(100, 100, 112) == (112, 112)


@pytest.mark.parametrize("fail_from", [0, 8])
def test_pyav_takes_over_where_decord_fails(tmp_path, monkeypatch, caplog, fail_from):
    import decord

    video = make_video(tmp_path / "v.mp4", 20, 25, (96, 72), audio=None)
    real = decord.VideoReader.get_batch

    def flaky(self, indices):
        if indices[0] >= fail_from:
            raise decord.DECORDError("simulated failure")
        return real(self, indices)

    monkeypatch.setattr(decord.VideoReader, "get_batch", flaky)
    _, got = collect(VideoItem("v", video.path, None, None, "train"), 4, crop_size=64, decoder="decord")
    assert [read_frame_index(f) for f in got["faces"]] == list(range(20))
    assert np.array_equal(got["index"], np.arange(20))
    assert f"decord failed on frames {fail_from}-{fail_from + 3}" in caplog.text
