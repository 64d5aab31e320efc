"""The sound is the track a player plays, mixed to mono as FFmpeg mixes it (docs/datasets.md, "What
emokd does with each quirk"): the default-disposition track, `--audio-track N`, the standard
downmix of 5.1 with the LFE left out, decoding streamed in chunks. Cached rows are compared with a
reference file holding the chosen track alone or the hand-computed mix."""

from fractions import Fraction

import av
import numpy as np
import pytest
import soxr
from click.testing import CliRunner

from emokd.cli import main
from emokd.constants import SAMPLE_RATE
from emokd.errors import DataError
from emokd.extract.audio import load_audio
from emokd.extract.config import ExtractConfig
from emokd.index.probe import probe_video
from emokd.testing import quirky_videos as quirky
from emokd.testing.videos import make_video
from media_support import assert_rows_equal, default_weights, extract_one


@pytest.fixture(scope="module", autouse=True)
def weights():
    default_weights()


def test_the_default_track_is_used_not_the_first(tmp_path):
    """Track 0 is a silent commentary, track 1 the default: the rows are track 1's alone."""
    both = quirky.write_two_tracks(tmp_path / "two.mp4", default=1)
    alone = quirky.remux(both, tmp_path / "track1.mp4", keep=[0, 2])
    got, attrs, result = extract_one(both, tmp_path)
    want, _, _ = extract_one(alone, tmp_path)
    assert_rows_equal(got, want)
    assert got["audio_ok"].all() and np.abs(got["audio"].astype(np.float32)).max() > 0
    assert {k: attrs["audio"][k] for k in ("track", "stream_index", "language", "layout", "default")} == \
        {"track": 1, "stream_index": 2, "language": "eng", "layout": "mono", "default": True}
    assert attrs["audio_tracks"] == 2
    assert any("audio from track 1 [eng] aac mono (default) of 2 tracks" in line for line in result["log"])


def test_audio_track_flag_chooses_a_track_and_a_missing_one_fails_naming_the_file(tmp_path):
    both = quirky.write_two_tracks(tmp_path / "two.mp4", default=1)
    alone = quirky.remux(both, tmp_path / "track0.mp4", keep=[0, 1])
    got, attrs, _ = extract_one(both, tmp_path, audio_track=0)
    want, _, _ = extract_one(alone, tmp_path, audio_track=0)
    assert_rows_equal(got, want)
    assert attrs["audio"]["track"] == 0 and attrs["audio"]["language"] == "fra"
    info = probe_video(both)
    with pytest.raises(DataError, match=rf"{both}: --audio-track 2 does not exist \(the file has track 0 "
                                        r"\[fra\] aac mono; track 1 \[eng\] aac mono \(default\)\)"):
        load_audio(both, info, track=2)
    none_default = quirky.write_two_tracks(tmp_path / "none.mkv", default=-1)
    assert load_audio(none_default, probe_video(none_default)).info.track == 0     # else the first


def test_audio_track_flag_reaches_the_settings(tmp_path):
    sv = make_video(tmp_path / "data" / "a.mp4", 10, 25, (64, 48))
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"video\n{sv.path}\n")
    out = CliRunner().invoke(main, ["extract-features", str(manifest), "--cache", str(tmp_path / "c"),
                                    "--dry-run", "--audio-track", "1", "--face-source", "whole-frame"])
    assert out.exit_code == 0, out.output
    assert "audio_track: 1" in out.output
    assert ExtractConfig().audio_track is None


def test_surround_is_mixed_with_the_standard_downmix(tmp_path):
    """5.1: rows equal those of a mono file holding the hand-computed mix (centre 1, fronts -3 dB,
    surrounds -6 dB, LFE 0, over their sum); dialogue in the centre at -10.7 dB, not -15.6 dB."""
    surround = quirky.write_surround(tmp_path / "film.mov", n_frames=50, layout="5.1")
    signals = quirky.surround_signals(int(50 / 25 * quirky.AUDIO_RATE), "5.1")
    mono = quirky.remux(surround, tmp_path / "mono.mov", mono=quirky.standard_downmix(signals, "5.1"))
    a, b = load_audio(surround, probe_video(surround)), load_audio(mono, probe_video(mono))
    np.testing.assert_allclose(a.signal, b.signal, atol=1e-6)
    got, attrs, _ = extract_one(surround, tmp_path)
    want, _, _ = extract_one(mono, tmp_path)
    assert_rows_equal(got, want, ("face", "face_ok", "pts", "audio_ok"))
    np.testing.assert_allclose(got["audio"].astype(np.float32), want["audio"].astype(np.float32),
                               rtol=2e-3, atol=2e-3)                   # float16 rounding of a 1e-7 difference
    assert attrs["audio"]["layout"] == "5.1" and attrs["audio"]["channels"] == 6

    n = 48000
    names = [c.name for c in av.AudioLayout("5.1").channels]
    centre = np.zeros((6, n), np.float32)
    centre[names.index("FC")] = 0.5
    lfe = np.zeros((6, n), np.float32)
    lfe[names.index("LFE")] = 0.5
    for signal, level in ((centre, 0.5 / (1 + 2 ** 0.5 + 1)), (lfe, 0.0)):
        path = quirky.write_surround(tmp_path / f"level{level}.mov", n_frames=25, signals=signal)
        track = load_audio(path, probe_video(path))
        middle = track.signal[SAMPLE_RATE // 4:3 * SAMPLE_RATE // 4]
        np.testing.assert_allclose(middle, level, atol=1e-5)
    assert 20 * np.log10(1 / (1 + 2 ** 0.5 + 1)) == pytest.approx(-10.66, abs=0.01)


@pytest.mark.parametrize("layout", ["stereo", "quad", "5.1(side)", "7.1"])
def test_other_layouts_follow_the_same_matrix(tmp_path, layout):
    n = int(25 / 25 * quirky.AUDIO_RATE)
    signals = quirky.surround_signals(n, layout)
    path = quirky.write_surround(tmp_path / "x.mov", n_frames=25, layout=layout, signals=signals)
    track = load_audio(path, probe_video(path))
    want = soxr.resample(quirky.standard_downmix(signals, layout), quirky.AUDIO_RATE, SAMPLE_RATE, quality="HQ")
    np.testing.assert_allclose(track.signal[:len(want)], want[:len(track.signal)], atol=1e-5)
    assert track.layout == layout


def test_streamed_decoding_equals_decoding_the_whole_track_at_once(tmp_path):
    """Chunked decode + soxr stream = the whole track decoded, mixed and resampled in one go."""
    sv = make_video(tmp_path / "s.mp4", 150, 30, (64, 48), audio="speechlike", audio_rate=44100,
                    audio_offset_s=0.2)
    info = probe_video(sv.path)
    track = load_audio(sv.path, info)
    with av.open(str(sv.path)) as container:
        frames = list(container.decode(audio=0))
        whole = np.concatenate([f.to_ndarray().reshape(-1) for f in frames]).astype(np.float32)
        t_first = frames[0].time
    resampled = soxr.resample(whole, 44100, SAMPLE_RATE, quality="HQ")
    offset = int(round((t_first - info.start_time) * SAMPLE_RATE))
    n = min(len(resampled), len(track.signal) - offset)
    np.testing.assert_array_equal(track.signal[offset:offset + n], resampled[:n])
    assert not track.signal[:offset].any() and track.valid_start == offset
    assert track.record()["offset_s"] == pytest.approx(0.2 - 1024 / 44100, abs=1e-4)   # AAC priming


def test_audio_gaps_keep_the_clock_when_streamed(tmp_path):
    """A hole in the audio timestamps is silence of its length; the samples after it stay put."""
    path = tmp_path / "gap.mkv"
    rate = 48000
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = container.add_stream("pcm_f32le", rate=rate, layout="mono")
        packets = []
        for k in range(50):
            frame = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")
            frame.pts, frame.time_base = k, Fraction(1, 25)
            packets += video.encode(frame)
        packets += video.encode(None)
        for start in (0, rate):                             # 0.5 s of audio at 0 s and at 1 s
            piece = np.zeros((1, rate // 2), np.float32)
            piece[0, :48] = 0.9                             # a 1 ms burst at its start
            frame = av.AudioFrame.from_ndarray(piece, format="flt", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
            packets += audio.encode(frame)
        packets += audio.encode(None)
        for packet in sorted(packets, key=lambda p: float(p.dts * p.time_base)):
            container.mux(packet)
    track = load_audio(path, probe_video(path))
    loud = np.flatnonzero(track.signal > 0.45)
    onsets = loud[np.insert(np.diff(loud) > 100, 0, True)]
    assert np.abs(onsets - [0, SAMPLE_RATE]).max() <= 2
    assert np.abs(track.signal[SAMPLE_RATE // 2 + 50:SAMPLE_RATE - 50]).max() < 1e-3   # silence in the hole
