"""Bad and unusual media: unreadable, truncated, audio-only files, stereo and 48 kHz audio."""

from fractions import Fraction

import av
import numpy as np
import pytest

from emokd.constants import SAMPLE_RATE
from emokd.errors import DataError
from emokd.extract.audio import load_audio
from emokd.extract.faces import iter_face_batches
from emokd.extract.timing import probe_item
from emokd.index.manifest import VideoItem
from emokd.index.probe import probe_video
from emokd.testing.videos import make_video, read_frame_index


def test_missing_and_unreadable_files_name_the_file(tmp_path):
    with pytest.raises(DataError, match=f"{tmp_path / 'nope.mp4'}: video file not found"):
        probe_video(tmp_path / "nope.mp4")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x01garbage" * 500)
    with pytest.raises(DataError, match=str(junk)):
        probe_video(junk)
    with pytest.raises(DataError, match=str(junk)):
        probe_item(VideoItem("junk", junk, None, None, "train"))           # the task's one probe


def test_truncated_video_gives_its_frames_or_an_error_naming_it(tmp_path):
    sv = make_video(tmp_path / "t.avi", 40, 25, (64, 48), "mpeg4", audio="clicks")
    data = sv.path.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    item = VideoItem("cut", cut, None, None, "train")
    probe = probe_item(item)
    info = probe.info
    assert 0 < info.n_frames < 40
    track = load_audio(cut, info)                  # partial audio, no crash
    assert track.signal.shape[0] == int(np.ceil(info.duration * SAMPLE_RATE))
    seen = []
    try:
        for batch in iter_face_batches(item, probe, 8, crop_size=32):
            seen += [read_frame_index(f) for f in batch.faces]
    except DataError as exc:
        assert str(cut) in str(exc)
    assert seen == list(range(len(seen)))


def test_audio_only_file_is_not_a_video(tmp_path):
    path = tmp_path / "a.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=22050, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 4096), np.float32), format="flt", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = 22050, 0, Fraction(1, 22050)
        for packet in list(stream.encode(frame)) + list(stream.encode(None)):
            container.mux(packet)
    with pytest.raises(DataError, match=f"{path}: no video stream"):
        probe_video(path)


def test_stereo_48k_audio_mixed_to_mono_and_resampled(tmp_path):
    path = tmp_path / "s.mov"
    rate = 48000
    with av.open(str(path), "w") as container:
        vs = container.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        aus = container.add_stream("pcm_s16le", rate=rate, layout="stereo")
        n = rate                                                    # 1 s
        left = np.zeros(n, np.float32)
        left[rate // 2] = 0.8                                       # click at 0.5 s, left channel only
        right = np.full(n, 0.0, np.float32)
        frame = av.AudioFrame.from_ndarray(np.stack([left, right]).T.reshape(1, -1).copy(), format="flt",
                                           layout="stereo")
        frame.sample_rate, frame.pts, frame.time_base = rate, 0, Fraction(1, rate)
        packets = list(aus.encode(frame)) + list(aus.encode(None))
        for k in range(25):
            vf = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")
            vf.pts = k
            packets += list(vs.encode(vf))
        packets += list(vs.encode(None))
        for packet in packets:
            container.mux(packet)
    info = probe_video(path)
    track = load_audio(path, info)
    assert track.source_rate == rate and track.has_audio
    peak = int(np.argmax(track.signal))
    assert peak == 11025                                            # 0.5 s at 22050 Hz
    # mono = mean of the channels: an impulse of area 0.4 at 48 kHz keeps its area per second
    area = track.signal[peak - 200:peak + 200].sum()
    assert area == pytest.approx(0.4 * SAMPLE_RATE / rate, rel=0.05)
    assert track.n_valid == SAMPLE_RATE
