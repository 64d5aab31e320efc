"""Frames are the container's frames, as a player shows them (docs/datasets.md, "What emokd does
with each quirk"): MPEG-TS with B-frames, decord checked against PyAV, rotation, non-square pixels,
decode batches sized by pixels. Cached rows are compared with a reference file's."""

from fractions import Fraction
from types import SimpleNamespace

import numpy as np
import pytest

from emokd.cache import FeatureCache
from emokd.cache.report import cache_info, format_info
from emokd.extract import verify
from emokd.extract.driver import ExtractionSummary, _account
from emokd.extract import video as video_module
from emokd.extract.faces import iter_face_batches
from emokd.extract.timing import probe_item
from emokd.extract.video import DecodeReport, DecoderMismatch, decode_batches, frames_per_batch
from emokd.index.manifest import VideoItem
from emokd.index.probe import probe_video
from emokd.testing import quirky_videos as quirky
from emokd.testing.videos import make_video, read_frame_index
from media_support import assert_rows_equal, cosines, default_weights, extract_one


@pytest.fixture(scope="module", autouse=True)
def weights():
    default_weights()


def frames_of(path, size=None, **kwargs):
    info = probe_video(path)
    report = DecodeReport()
    frames = np.concatenate([f for _, f in decode_batches(path, info, info.n_frames, 16, size, report=report,
                                                          **kwargs)])
    return frames, report


@pytest.mark.parametrize("codec,decoder", [("h264", "decord"), ("mpeg2", "decord"), ("h264", "pyav")])
def test_mpeg_ts_with_b_frames_gives_the_rows_of_the_same_bitstream_in_mp4(tmp_path, codec, decoder):
    ts = quirky.write_ts_with_bframes(tmp_path / f"cam_{codec}.ts", n_frames=75, gop=12, codec=codec)
    mp4 = quirky.remux(ts, tmp_path / f"cam_{codec}.mp4")
    # 128x96: whole frames at their own size, so both decoders give the same pixels
    got, attrs, result = extract_one(ts, tmp_path, crop_size=96, video_decoder=decoder)
    want, _, _ = extract_one(mp4, tmp_path, crop_size=96, video_decoder=decoder)
    assert_rows_equal(got, want, ("face", "face_ok", "pts", "audio_ok"))
    # TS keeps times on a 90 kHz clock: the audio start moves by < 1 ms against mp4's, no more
    assert cosines(got["audio"], want["audio"]).min() > 0.999
    frames, _ = frames_of(ts, decoder=decoder)
    assert [read_frame_index(f) for f in frames] == list(range(75))
    assert attrs["decoding"]["decoder"] == "pyav"
    if decoder == "pyav":
        assert attrs["decoding"]["reason"] == "" and result["media"]["pyav_reason"] == ""
        return
    assert "MPEG-TS" in attrs["decoding"]["reason"]
    # the run's summary line and `cache info` say so
    summary = ExtractionSummary(total=1)
    shard_result = {"shard": "v", "items": {"v": result}, "seconds": result["seconds"], "log": [], "timings": {}}
    shard = SimpleNamespace(ids=["v"], items=[VideoItem("v", ts, None, None, "train")])
    _account(shard_result, summary, FeatureCache.open(str(tmp_path / ts.name) + ".zarr"), shard)
    assert "; 1 decoded with PyAV;" in summary.line() and "MPEG-TS" in summary.pyav["v"]
    text = format_info(cache_info(FeatureCache.open(str(tmp_path / ts.name) + ".zarr")))
    assert "decoding     1 videos decoded with PyAV instead of decord\n  v: MPEG-TS with reordered frames" in text


def test_decord_is_checked_and_a_mismatch_switches_the_video_to_pyav(tmp_path, monkeypatch, caplog):
    """Without the TS rule, the check itself finds decord's shifted frames (frame 0 is frame 12)."""
    ts = quirky.write_ts_with_bframes(tmp_path / "cam.ts", n_frames=75, gop=12, audio=False)
    monkeypatch.setattr(video_module, "known_bad_for_decord", lambda info: None)
    frames, report = frames_of(ts, decoder="decord")
    assert [read_frame_index(f) for f in frames] == list(range(75))
    assert report.decoder == "pyav" and report.mismatch == 0 and "decord's frame 0" in report.reason
    assert "decord's frame 0 is not the container's frame 0; decoding with PyAV" in caplog.text
    # on a file decord gets right, the first and the last frame are among those checked
    mp4 = quirky.remux(ts, tmp_path / "cam.mp4")
    frames, report = frames_of(mp4, decoder="decord")
    assert report.decoder == "decord" and report.mismatch is None
    assert report.checked[0] == 0 and report.checked[-1] == 74 and len(report.checked) == 5
    assert [read_frame_index(f) for f in frames] == list(range(75))


def test_a_late_mismatch_makes_the_task_decode_the_video_again(tmp_path, monkeypatch):
    """A wrong frame found after rows were handed out: DecoderMismatch, and the task's face stage
    starts again on PyAV (rows rewritten), so the cache equals a run without the mismatch."""
    sv = make_video(tmp_path / "v.mp4", 60, 25, (128, 96), audio="clicks", gop=12)
    real = verify.ReferenceFrames.first_mismatch

    def wrong_at_48(self, start, frames):
        return 48 if start <= 48 < start + len(frames) else real(self, start, frames)

    monkeypatch.setattr(verify.ReferenceFrames, "first_mismatch", wrong_at_48)
    item = VideoItem("v", sv.path, None, None, "train")
    with pytest.raises(DecoderMismatch):
        list(iter_face_batches(item, probe_item(item), 16, crop_size=96, decoder="decord"))
    got, attrs, result = extract_one(sv.path, tmp_path, crop_size=96, video_decoder="decord")
    monkeypatch.undo()
    (tmp_path / "ref").mkdir()
    want, _, _ = extract_one(sv.path, tmp_path / "ref", crop_size=96, video_decoder="decord")
    assert_rows_equal(got, want)
    assert attrs["decoding"]["decoder"] == "pyav" and attrs["decoding"]["mismatch"] == 48
    assert result["media"]["decoder"] == "pyav" and "decord's frame 48" in result["media"]["pyav_reason"]


@pytest.mark.parametrize("rotation,mirrored,decoder", [(-90, False, "decord"), (90, False, "decord"),
                                                      (180, False, "decord"), (-90, True, "decord"),
                                                      (-90, False, "pyav")])
def test_rotated_phone_video_gives_the_rows_of_the_upright_source(tmp_path, rotation, mirrored, decoder):
    display = (128, 96) if rotation == 180 else (96, 128)
    turned = quirky.write_rotated(tmp_path / "phone.mp4", 30, display, rotation, mirrored)
    upright = quirky.write_square(tmp_path / "upright.mp4", 30, display, lossless=True)
    frames, report = frames_of(turned, decoder=decoder)
    assert frames.shape[1:3] == (display[1], display[0]) and report.decoder == "pyav"
    assert ("display matrix" in report.reason) == (decoder == "decord")
    np.testing.assert_array_equal(frames, frames_of(upright, decoder=decoder)[0])   # lossless: equal pictures
    got, attrs, _ = extract_one(turned, tmp_path, crop_size=96, video_decoder=decoder)
    want, _, _ = extract_one(upright, tmp_path, crop_size=96, video_decoder=decoder)
    assert_rows_equal(got, want, ("face", "face_ok", "pts"))
    assert attrs["display"] == {"stored_size": [display[1], display[0]] if rotation != 180 else list(display),
                                "sar": "1:1", "rotation": rotation % 360, "mirrored": mirrored,
                                "display_size": list(display)}


def test_rotation_on_the_detector_path_and_in_crops(tmp_path):
    """Detection and cropping see the upright picture too (full-size decode, no scaling)."""
    turned = quirky.write_rotated(tmp_path / "phone.mp4", 12, (96, 128), -90)
    seen = []

    class Recording:
        def detect(self, image):
            seen.append((image.shape, read_frame_index(image)))
            from emokd.models.face_detector import Detections

            return Detections(np.array([[10, 60, 70, 120]], np.float32), np.ones(1, np.float32),
                              np.zeros((0, 5, 2), np.float32))

    item = VideoItem("p", turned, None, None, "train")
    batches = list(iter_face_batches(item, probe_item(item), 5, crop_size=32, detector=Recording()))
    assert seen == [((128, 96, 3), k) for k in range(12)]
    assert [len(b.index) for b in batches] == [5, 5, 2]


def test_non_square_pixels_are_made_square_before_faces_are_cut(tmp_path):
    """SAR 4:3 (96x96 stored, shown 128x96): the decoded frames and the cached rows match the
    square-pixel source to within its re-encoding, not squashed to 3/4 width."""
    anamorphic = quirky.write_anamorphic(tmp_path / "dv.mp4", 30, (128, 96), Fraction(4, 3))
    square = quirky.write_square(tmp_path / "square.mp4", 30, (128, 96))
    info = probe_video(anamorphic)
    assert info.geometry.display == (128, 96) and (info.width, info.height) == (96, 96)
    frames, report = frames_of(anamorphic, decoder="decord")
    reference, _ = frames_of(square)
    assert frames.shape == reference.shape == (30, 96, 128, 3) and report.decoder == "decord"
    assert np.abs(frames.astype(int) - reference).mean() < 6            # re-encoding noise; squashed: ~40
    assert [read_frame_index(f) for f in frames] == list(range(30))
    got, attrs, _ = extract_one(anamorphic, tmp_path, crop_size=64)
    want, _, _ = extract_one(square, tmp_path, crop_size=64)
    assert cosines(got["face"], want["face"]).min() > 0.98
    np.testing.assert_array_equal(got["pts"], want["pts"])
    assert attrs["display"]["sar"] == "4:3" and attrs["display"]["display_size"] == [128, 96]
    frames, _ = frames_of(anamorphic, decoder="pyav")                    # both decoders: square pixels
    assert frames.shape == (30, 96, 128, 3) and np.abs(frames.astype(int) - reference).mean() < 6


def test_decode_batches_are_sized_by_pixels(tmp_path, monkeypatch):
    assert frames_per_batch((320, 240), 64) == 64
    assert frames_per_batch((3840, 2160), 64) == video_module.DECODE_BATCH_BYTES // (3840 * 2160 * 3) == 2
    assert frames_per_batch((7680, 4320), 64) == 1
    sv = make_video(tmp_path / "v.mp4", 20, 25, (320, 240), audio=None)
    monkeypatch.setattr(video_module, "DECODE_BATCH_BYTES", 320 * 240 * 3 * 3)
    info = probe_video(sv.path)
    for decoder in ("decord", "pyav"):
        sizes = [len(f) for _, f in decode_batches(sv.path, info, 20, 16, decoder=decoder)]
        assert sizes == [3] * 6 + [2]
    item = VideoItem("v", sv.path, None, None, "train")              # face batches are still 8 frames
    assert [len(b.index) for b in iter_face_batches(item, probe_item(item), 8, crop_size=32)] == [8, 8, 4]


def test_interlaced_video_gives_one_row_per_coded_frame(tmp_path):
    """Interlaced H.264 (top field first): a row is a coded frame (both fields), not deinterlaced."""
    import av

    path = quirky.write_interlaced(tmp_path / "tv.mp4", 20)
    with av.open(str(path)) as container:
        assert all(f.interlaced_frame for f in container.decode(video=0))
    info = probe_video(path)
    frames, report = frames_of(path, decoder="decord")
    assert info.n_frames == 20 and [read_frame_index(f) for f in frames] == list(range(20))
    np.testing.assert_allclose(info.pts, np.arange(20) / 25, atol=1e-9)
    assert report.checked == [0, 12, 19] and report.mismatch is None      # first, keyframe, last
