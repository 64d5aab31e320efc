"""Frame-exact and sample-exact alignment on generated videos (rules: docs/datasets.md, "Time alignment").

Frames draw their own index; audio has a one-sample click at the start of every frame's display
interval (video time k / fps), so the exclusive end of frame k's audio window must be the click of
frame k + 1, to within one sample at 22050 Hz. Everything goes through what the extraction task
runs: `probe_item` once per video, faces from `iter_face_batches` (as `_face_stage`), windows from
`audio_windows` and flags from `audio_ok` (as `_audio_stage`, via `audio_features`).
"""

from fractions import Fraction

import numpy as np
import pytest

from emokd.constants import SAMPLE_RATE
from emokd.errors import ConfigError
from emokd.extract.audio import load_audio
from emokd.extract.faces import iter_face_batches
from emokd.extract.timing import audio_features, audio_ok, probe_item, window_end_samples, window_samples
from emokd.index.manifest import VideoItem
from emokd.index.probe import PTS_CONTAINER, PTS_INDEX_AVI
from emokd.models.audio_windows import audio_windows
from emokd.testing.videos import as_frame_rate, make_video, read_frame_index

SIZE = (96, 72)


def click_positions(signal: np.ndarray) -> np.ndarray:
    """Sample index of each click: local maxima above half the loudest, > 100 samples apart."""
    level = 0.5 * np.abs(signal).max()
    above = np.flatnonzero(signal > level)
    groups = np.split(above, np.flatnonzero(np.diff(above) > 100) + 1)
    return np.array([g[np.argmax(signal[g])] for g in groups if len(g)], dtype=np.int64)


def exact_frame_end(k, fps) -> np.ndarray:
    rate = as_frame_rate(fps)
    return np.array([float((kk + 1) / rate) for kk in k])


def faces_of(item, batch_size, crop_size, decoder="pyav"):
    """The face stage's batches of `item`, on the one probe the task makes."""
    probe = probe_item(item)
    batches = list(iter_face_batches(item, probe, batch_size, crop_size=crop_size, decoder=decoder))
    for batch in batches:
        np.testing.assert_array_equal(batch.pts, probe.pts[batch.index])     # the probe's frame times
    return probe, batches


@pytest.fixture(scope="module")
def soundnet():
    from emokd.models.encoder import build_encoder

    return build_encoder("soundnet8")  # `make test` fetches the weights first


def encoded_windows(encoder, monkeypatch, track, ends, window, batch_size=64):
    """The windows the per-window audio mode hands the encoder (`audio_features`, as `_audio_stage`
    runs it), recorded instead of encoded."""
    seen = []

    def record(batch):
        seen.append(np.array(batch))
        return np.zeros((len(batch), encoder.output_dim), np.float32)

    with monkeypatch.context() as patch:
        patch.setattr(encoder, "encode_numpy", record)
        feats = audio_features(encoder, track, ends, window, "per-window", batch_size)
    assert feats.shape == (len(ends), encoder.output_dim)
    assert all(len(batch) <= batch_size for batch in seen)
    return np.concatenate(seen)


def check_video(path, n, fps, expected_source, decoder="pyav"):
    # decoded frame k is frame k (whole-frame path: no crops, no detector)
    item = VideoItem("v", path, None, None, "train")
    probe, batches = faces_of(item, 7, 64, decoder)
    info = probe.info
    assert probe.n_frames == info.n_frames == n
    assert info.pts_source == expected_source
    k = np.arange(n)
    np.testing.assert_allclose(info.pts, exact_frame_end(k, fps) - float(1 / as_frame_rate(fps)), atol=1e-9)
    np.testing.assert_allclose(info.frame_end, exact_frame_end(k, fps), atol=1e-9)
    seen = []
    for batch in batches:
        seen += [read_frame_index(face) for face in batch.faces]
        assert batch.face_ok.all()
    assert seen == list(range(n))

    # the window end of frame k is the frame's end, within one sample
    ends = window_end_samples(info)
    exact = exact_frame_end(k, fps) * SAMPLE_RATE
    assert np.abs(ends - exact).max() <= 0.5
    return info, ends


FORMATS = [(".mp4", "h264", PTS_CONTAINER), (".avi", "mpeg4", PTS_INDEX_AVI)]


@pytest.mark.parametrize("decoder", ["pyav", "decord"])
@pytest.mark.parametrize("fps", [25, 29.97, 30])
@pytest.mark.parametrize("suffix,codec,source", FORMATS, ids=["mp4", "avi"])
def test_frames_and_clicks_align(tmp_path, fps, suffix, codec, source, decoder):
    n = 24
    sv = make_video(tmp_path / f"v{suffix}", n, fps, SIZE, codec, audio="clicks")
    info, ends = check_video(sv.path, n, fps, source, decoder)
    track = load_audio(sv.path, info)
    assert track.has_audio and track.sample_rate == SAMPLE_RATE
    clicks = click_positions(track.signal)
    # clicks at the start of frames 0..n-1 (the click of frame 0 is sample 0)
    assert len(clicks) == n
    np.testing.assert_array_less(np.abs(clicks - np.rint(info.pts * SAMPLE_RATE)), 1.01)
    # the window of frame k ends (exclusive) on the click that starts frame k + 1
    np.testing.assert_array_less(np.abs(ends[:-1] - clicks[1:]), 1.01)
    # the window is the slice of the track ending there, and holds frame k's click one frame before its end
    w = window_samples(1.0)
    windows, ok = audio_windows(track.signal, ends, w), audio_ok(track, ends)
    assert ok.all()
    for k in (1, n // 2, n - 1):
        lo = ends[k] - w
        expected = np.zeros(w, np.float32)
        expected[max(-lo, 0):] = track.signal[max(lo, 0):ends[k]]
        np.testing.assert_array_equal(windows[k], expected)
        inside = click_positions(windows[k])
        assert np.abs(inside - (w - (ends[k] - clicks[k]))).min() <= 1


@pytest.mark.parametrize("suffix,codec,acodec", [(".mp4", "h264", "aac"), (".mov", "h264", "pcm_s16le")])
def test_audio_starting_later_than_video(tmp_path, suffix, codec, acodec):
    fps, n, offset = 30, 30, 0.5
    sv = make_video(tmp_path / f"late{suffix}", n, fps, SIZE, codec, audio="clicks", audio_offset_s=offset,
                    audio_codec=acodec)
    info, ends = check_video(sv.path, n, fps, PTS_CONTAINER)
    track = load_audio(sv.path, info)
    # the AAC stream's first decoded sample may precede 0.5 s by its priming, never follow it
    assert 0.45 <= track.offset_s <= offset + 1e-6
    clicks = click_positions(track.signal)
    first = int(round(offset * fps))                              # the first frame that has audio
    assert len(clicks) == n - first
    np.testing.assert_array_less(np.abs(clicks - np.rint(info.pts[first:] * SAMPLE_RATE)), 1.01)
    np.testing.assert_array_less(np.abs(ends[first - 1:-1] - clicks), 1.01)
    windows, ok = audio_windows(track.signal, ends, window_samples(0.2)), audio_ok(track, ends)
    assert not ok[:first - 1].any()            # frames that end before the audio starts
    assert ok[first:].all()
    assert np.abs(windows[:first - 2]).max() < 1e-3


def test_audio_stream_first_and_before_video(tmp_path):
    """Audio is stream 0 and starts 0.2 s before the first frame: its first 0.2 s are dropped."""
    fps, n = 25, 20
    sv = make_video(tmp_path / "first.mp4", n, fps, SIZE, audio="clicks", audio_offset_s=-0.2, audio_first=True)
    info, ends = check_video(sv.path, n, fps, PTS_CONTAINER)
    track = load_audio(sv.path, info)
    assert track.offset_s == pytest.approx(-0.2, abs=1e-6)
    clicks = click_positions(track.signal)
    assert clicks[0] == 0 and len(clicks) == n
    np.testing.assert_array_less(np.abs(ends[:-1] - clicks[1:]), 1.01)


def test_first_ten_seconds_kept_and_zero_padded(tmp_path, soundnet, monkeypatch):
    fps, n = 25, 275                                                # 11 s
    sv = make_video(tmp_path / "long.mp4", n, fps, (64, 48), audio="clicks", audio_codec="aac")
    item = VideoItem("long", sv.path, None, None, "train")
    probe, batches = faces_of(item, 64, 32)
    assert np.array_equal(np.concatenate([b.index for b in batches]), np.arange(n))  # every frame kept, in order
    info = probe.info
    track = load_audio(sv.path, info)
    clicks = click_positions(track.signal)
    w = window_samples(10.0)
    assert w == 220500
    ends = window_end_samples(info)
    windows = encoded_windows(soundnet, monkeypatch, track, ends, w)   # what SoundNet per-window encodes
    assert windows.shape == (n, w)
    np.testing.assert_array_equal(windows, audio_windows(track.signal, ends, w))   # the one cutter
    assert audio_ok(track, ends).all()
    heads = {k: windows[k] for k in (0, 100, 249, 250, 274)}
    for k, window in heads.items():
        start = ends[k] - w
        pad = max(-start, 0)
        assert not window[:pad].any()                                  # zeros before t = 0
        expected = [c - start for c in clicks if start <= c < ends[k]]
        got = click_positions(window)
        assert len(got) == len(expected) and np.abs(got - expected).max() <= 1
    assert ends[249] == 220500                                        # frame 249 ends at exactly 10 s
    assert click_positions(heads[249])[0] == 0                        # ...so its window starts on click 0
    assert click_positions(heads[250])[0] == clicks[1] - (ends[250] - w)


def test_audio_shorter_than_video_and_no_audio(tmp_path):
    fps, n = 30, 30
    sv = make_video(tmp_path / "short.mov", n, fps, SIZE, audio="clicks", audio_duration_s=0.5,
                    audio_codec="pcm_s16le")
    info = probe_item(VideoItem("short", sv.path, None, None, "train")).info
    track = load_audio(sv.path, info)
    assert track.n_valid == round(0.5 * SAMPLE_RATE)
    ends = window_end_samples(info)
    windows, ok = audio_windows(track.signal, ends, window_samples(0.1)), audio_ok(track, ends)
    assert ok[:15].all() and not ok[16:].any()            # frame 15 ends 1 frame after the audio
    assert not windows[20:].any()

    silent = make_video(tmp_path / "silent.mp4", 10, fps, SIZE, audio=None)
    probe, batches = faces_of(VideoItem("s", silent.path, None, None, "train"), 4, 32)
    track = load_audio(silent.path, probe.info)
    assert not track.has_audio and not track.signal.any()
    assert sum(len(b.index) for b in batches) == 10
    ends = window_end_samples(probe.info)
    windows = audio_windows(track.signal, ends, window_samples(10.0))
    assert not audio_ok(track, ends).any() and windows.shape == (10, 220500) and not windows.any()


@pytest.mark.parametrize("fps,suffix,codec", [(23.976, ".mp4", "h264"), (120, ".mp4", "h264"),
                                              (30, ".mov", "hevc")])
def test_other_rates_and_hevc_in_mov(tmp_path, fps, suffix, codec):
    n = 20
    sv = make_video(tmp_path / f"r{suffix}", n, fps, SIZE, codec, audio="tone-steps")
    info, _ = check_video(sv.path, n, fps, PTS_CONTAINER)
    assert info.fps == pytest.approx(float(as_frame_rate(fps)), rel=1e-6)
    assert load_audio(sv.path, info).has_audio


def test_variable_frame_rate_uses_container_times(tmp_path):
    import av

    times_ms = [0, 40, 80, 100, 200, 210, 260, 400]
    path = tmp_path / "vfr.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        from emokd.testing.videos import draw_frame

        for k, t in enumerate(times_ms):
            frame = av.VideoFrame.from_ndarray(draw_frame(k, (64, 48)), format="rgb24")
            frame.pts, frame.time_base = t, Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    probe, batches = faces_of(VideoItem("vfr", path, None, None, "train"), 3, 48)
    info = probe.info
    assert info.pts_source == PTS_CONTAINER
    np.testing.assert_allclose(info.pts, np.array(times_ms) / 1000, atol=1e-6)
    np.testing.assert_allclose(info.frame_end[:-1], np.array(times_ms[1:]) / 1000, atol=1e-6)
    seen = [read_frame_index(f) for b in batches for f in b.faces]
    assert seen == list(range(len(times_ms)))


def test_edit_list_trimming_the_start(tmp_path):
    """Frames with negative times are cut by the mp4 edit list: frame 0 is the first one shown
    (decord still counts the cut frames, so it hands the video to PyAV)."""
    import av

    from emokd.testing.videos import draw_frame

    path = tmp_path / "trimmed.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for k in range(20):
            frame = av.VideoFrame.from_ndarray(draw_frame(k, (64, 48)), format="rgb24")
            frame.pts, frame.time_base = k - 3, Fraction(1, 25)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    for decoder in ("pyav", "decord"):
        probe, batches = faces_of(VideoItem("t", path, None, None, "train"), 8, 48, decoder)
        assert probe.n_frames == 17
        np.testing.assert_allclose(probe.pts, np.arange(17) / 25, atol=1e-9)
        seen = [read_frame_index(f) for b in batches for f in b.faces]
        assert seen == list(range(3, 20))


def test_audio_ok_is_false_outside_the_decoded_audio(tmp_path):
    sv = make_video(tmp_path / "p.mp4", 30, 30, SIZE, audio="tone-steps", audio_offset_s=0.3, audio_duration_s=0.4)
    info = probe_item(VideoItem("p", sv.path, None, None, "train")).info
    track = load_audio(sv.path, info)
    ends = window_end_samples(info)
    ok = audio_ok(track, ends)
    assert ok.any() and not ok.all()
    assert np.flatnonzero(ok).tolist() == list(range(ok.argmax(), ok.argmax() + ok.sum()))   # one run of frames
    assert not audio_ok(None, ends).any()                         # image sequences: no track at all


class WindowsOnlyEncoder:
    """An audio encoder without encode_track: it can only encode the windows it is given."""

    name, output_dim = "windows-only", 3

    def encode_numpy(self, windows):
        return np.stack([windows.sum(1), windows[:, 0], windows[:, -1]], axis=1)


def test_encoders_without_encode_track_get_the_one_cutters_windows(tmp_path):
    sv = make_video(tmp_path / "c.mp4", 20, 25, SIZE, audio="clicks")
    info = probe_item(VideoItem("c", sv.path, None, None, "train")).info
    track = load_audio(sv.path, info)
    ends = window_end_samples(info)
    w = window_samples(0.3)
    feats = audio_features(WindowsOnlyEncoder(), track, ends, w, "per-window", 8)
    np.testing.assert_array_equal(feats, WindowsOnlyEncoder().encode_numpy(audio_windows(track.signal, ends, w)))
    with pytest.raises(ConfigError, match="audio_mode shared-trunk: encoder 'windows-only' has no encode_track"):
        audio_features(WindowsOnlyEncoder(), track, ends, w, "shared-trunk", 8)
