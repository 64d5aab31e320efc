"""Generated videos with the quirks of real recordings, each with the reference it must equal.

Frames draw their own index (`emokd.testing.videos.draw_frame`), audio carries clicks at frame
starts, as in `emokd.testing.videos`. The quirks (docs/datasets.md, "What emokd does with each
quirk") and their references:

- `write_ts_with_bframes`: MPEG-TS, H.264 or MPEG-2 with B-frames and several GOPs; reference:
  `remux` of the same packets into mp4.
- `write_two_tracks`: a silent commentary track 0 and a default-disposition track 1 with clicks;
  reference: `remux` keeping the video and one track.
- `write_vfr`: variable frame rate; `remux(..., retime=duplicate_stamp(k))` writes frame k with
  frame k-1's stamp, as recorders do; the true-times file is the reference.
- `write_anamorphic`: pixels 4:3 wider than tall (SAR) against the square-pixel source.
- `write_rotated`: pixels stored turned, a display matrix turning them back (phones);
  reference: the upright source (both lossless 4:4:4, so the pictures are equal exactly).
- `write_interlaced`: interlaced H.264, one coded picture per frame (two fields).
- `write_surround`: 5.1 audio (or any layout); `standard_downmix` is the hand computation of the
  mono mix it must give (FFmpeg's matrix, normalised), written as a mono reference with `remux`.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from emokd.testing.videos import draw_frame, make_texture, synth_audio

AUDIO_RATE = 48000
# FFmpeg's mono matrix (`swr_build_matrix`): centre 1, fronts -3 dB, sides/backs -6 dB, LFE 0
MONO_WEIGHTS = {"FC": 1.0, "FL": 0.5 ** 0.5, "FR": 0.5 ** 0.5, "SL": 0.5, "SR": 0.5, "BL": 0.5, "BR": 0.5,
                "LFE": 0.0}


def _frames(n_frames: int, size: tuple[int, int], face: bool = True, texture: bool = True):
    tex = make_texture((size[0] + 64, size[1])) if texture else None
    return [draw_frame(k, size, face, tex) for k in range(n_frames)]


def _video_stream(container, codec: str, rate: Fraction, size: tuple[int, int], gop: int, bframes: int,
                  pix_fmt: str = "yuv420p", lossless: bool = False):
    stream = container.add_stream(codec, rate=rate)
    stream.width, stream.height, stream.pix_fmt = size[0], size[1], pix_fmt
    stream.codec_context.gop_size = gop
    stream.codec_context.max_b_frames = bframes
    if codec == "libx264":
        stream.options = {"preset": "veryfast", "keyint": str(gop), "min-keyint": str(gop), "scenecut": "0",
                          "bframes": str(bframes), **({"qp": "0"} if lossless else {"crf": "16"})}
    else:
        stream.bit_rate = max(2_000_000, size[0] * size[1] * 60)
    return stream


def _audio_packets(stream, signal: np.ndarray, rate: int, layout: str, first_pts: int = 0) -> list:
    """Encode (channels, n) float32 in 1024-sample frames."""
    packets = []
    for i in range(0, signal.shape[1], 1024):
        piece = np.ascontiguousarray(signal[:, i:i + 1024].T).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(piece, format="flt", layout=layout)
        frame.sample_rate, frame.pts, frame.time_base = rate, first_pts + i, Fraction(1, rate)
        packets += stream.encode(frame)
    return packets + list(stream.encode(None))


def _video_packets(stream, images: list[np.ndarray], pts: list[int] | None = None) -> list:
    packets = []
    for k, image in enumerate(images):
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = k if pts is None else pts[k]
        frame.time_base = stream.codec_context.time_base if pts is not None else 1 / stream.codec_context.framerate
        packets += stream.encode(frame)
    return packets + list(stream.encode(None))


def _mux_in_order(container, packets: list) -> None:
    for packet in sorted(packets, key=lambda p: float((p.dts if p.dts is not None else p.pts) * p.time_base)):
        container.mux(packet)


def clicks(n_frames: int, fps: Fraction, rate: int = AUDIO_RATE) -> np.ndarray:
    """(1, n) clicks at every frame start over the video's duration."""
    return synth_audio("clicks", rate, 0.0, int(round(n_frames / fps * rate)), fps)[None]


def write_ts_with_bframes(path: str | Path, n_frames: int = 75, fps: int = 25, size: tuple[int, int] = (128, 96),
                          gop: int = 12, codec: str = "h264", audio: bool = True) -> Path:
    """MPEG-TS with B-frames (2 per P) and a GOP of `gop` frames; AAC clicks when `audio`."""
    path, rate = Path(path), Fraction(fps)
    with av.open(str(path), "w", format="mpegts") as container:
        encoder = {"h264": "libx264", "mpeg2": "mpeg2video"}[codec]
        video = _video_stream(container, encoder, rate, size, gop, 2)
        packets = _video_packets(video, _frames(n_frames, size))
        if audio:
            stream = container.add_stream("aac", rate=AUDIO_RATE, layout="mono")
            packets += _audio_packets(stream, clicks(n_frames, rate), AUDIO_RATE, "mono")
        _mux_in_order(container, packets)
    return path


def write_two_tracks(path: str | Path, n_frames: int = 40, fps: int = 25, size: tuple[int, int] = (128, 96),
                     default: int = 1) -> Path:
    """Video + two AAC tracks: track 0 silent ("fra", commentary), track 1 clicks ("eng");
    track `default` carries the default disposition."""
    path, rate = Path(path), Fraction(fps)
    with av.open(str(path), "w") as container:
        video = _video_stream(container, "libx264", rate, size, 12, 0)
        tracks = []
        for track, (language, signal) in enumerate([("fra", np.zeros_like(clicks(n_frames, rate))),
                                                    ("eng", clicks(n_frames, rate))]):
            stream = container.add_stream("aac", rate=AUDIO_RATE, layout="mono")
            stream.metadata["language"] = language
            stream.disposition = av.stream.Disposition.default if track == default else 0
            tracks.append((stream, signal))
        packets = _video_packets(video, _frames(n_frames, size))
        for stream, signal in tracks:
            packets += _audio_packets(stream, signal, AUDIO_RATE, "mono")
        _mux_in_order(container, packets)
    return path


def write_vfr(path: str | Path, times_ms: list[int], size: tuple[int, int] = (128, 96)) -> Path:
    """Matroska H.264 (no B-frames) with frame k at times_ms[k] and clicks at every frame start."""
    path = Path(path)
    with av.open(str(path), "w") as container:
        video = _video_stream(container, "libx264", Fraction(25), size, 12, 0)
        video.codec_context.time_base = Fraction(1, 1000)
        packets = _video_packets(video, _frames(len(times_ms), size), pts=list(times_ms))
        stream = container.add_stream("flac", rate=AUDIO_RATE, layout="mono")
        n = int(round((times_ms[-1] + 40) / 1000 * AUDIO_RATE))
        signal = np.zeros((1, n), np.float32)
        for t in times_ms:
            signal[0, int(round(t / 1000 * AUDIO_RATE))] = 0.8
        packets += _audio_packets(stream, signal, AUDIO_RATE, "mono")
        _mux_in_order(container, packets)
    return path


def duplicate_stamp(times_ms: list[int], k: int) -> Callable:
    """A `remux` retime giving frame k the stamp of frame k-1 (a recorder's repeated timestamp)."""
    def retime(packet) -> None:
        if packet.stream.type == "video" and packet.pts is not None:
            tb = packet.time_base
            if packet.pts == int(round(Fraction(times_ms[k], 1000) / tb)):
                packet.pts = packet.dts = int(round(Fraction(times_ms[k - 1], 1000) / tb))
    return retime


def write_anamorphic(path: str | Path, n_frames: int = 30, display: tuple[int, int] = (128, 96),
                     sar: Fraction = Fraction(4, 3)) -> Path:
    """The picture of `write_square` stored with pixels `sar` times wider than tall."""
    path = Path(path)
    stored = (int(round(display[0] / sar)), display[1])
    images = [np.asarray(Image.fromarray(img).resize(stored, Image.LANCZOS)) for img in _frames(n_frames, display)]
    with av.open(str(path), "w") as container:
        video = _video_stream(container, "libx264", Fraction(25), stored, 12, 0)
        video.codec_context.sample_aspect_ratio = sar
        _mux_in_order(container, _video_packets(video, images))
    return path


def write_square(path: str | Path, n_frames: int = 30, display: tuple[int, int] = (128, 96),
                 lossless: bool = False) -> Path:
    """The square-pixel, upright source of `write_anamorphic` and `write_rotated`."""
    path = Path(path)
    with av.open(str(path), "w") as container:
        video = _video_stream(container, "libx264", Fraction(25), display, 12, 0,
                              "yuv444p" if lossless else "yuv420p", lossless)
        _mux_in_order(container, _video_packets(video, _frames(n_frames, display)))
    return path


def write_rotated(path: str | Path, n_frames: int = 30, display: tuple[int, int] = (96, 128),
                  rotation: int = -90, mirrored: bool = False) -> Path:
    """`write_square(display, lossless=True)`'s picture stored turned by -`rotation` (and mirrored),
    with the display matrix that turns it back (rotation counter-clockwise, as PyAV reads it)."""
    path = Path(path)
    images = []
    for img in _frames(n_frames, display):
        stored = img[:, ::-1] if mirrored else img
        images.append(np.ascontiguousarray(np.rot90(stored, k=-(rotation // 90))))
    size = (images[0].shape[1], images[0].shape[0])
    with av.open(str(path), "w") as container:
        video = _video_stream(container, "libx264", Fraction(25), size, 12, 0, "yuv444p", lossless=True)
        video.set_display_rotation(rotation, hflip=mirrored)
        _mux_in_order(container, _video_packets(video, images))
    return path


def write_interlaced(path: str | Path, n_frames: int = 20, size: tuple[int, int] = (128, 96)) -> Path:
    """Interlaced H.264 (both fields of a frame in one coded picture, top field first)."""
    path = Path(path)
    with av.open(str(path), "w") as container:
        video = _video_stream(container, "libx264", Fraction(25), size, 12, 0)
        video.options = {**video.options, "x264-params": "interlaced=1:tff=1"}
        _mux_in_order(container, _video_packets(video, _frames(n_frames, size, texture=False)))
    return path


def surround_signals(n: int, layout: str = "5.1", rate: int = AUDIO_RATE, fps: Fraction = Fraction(25)
                     ) -> np.ndarray:
    """(channels, n): clicks in the centre (dialogue), tones in the fronts, a loud 50 Hz in the LFE,
    noise in the rest."""
    names = [c.name for c in av.AudioLayout(layout).channels]
    t = np.arange(n) / rate
    rng = np.random.default_rng(0)
    out = np.zeros((len(names), n), np.float32)
    for i, name in enumerate(names):
        if name == "FC":
            out[i] = synth_audio("clicks", rate, 0.0, n, fps)
        elif name in ("FL", "FR"):
            out[i] = 0.2 * np.sin(2 * np.pi * (440 if name == "FL" else 660) * t)
        elif name.startswith("LFE"):
            out[i] = 0.9 * np.sin(2 * np.pi * 50 * t)
        else:
            out[i] = 0.05 * rng.standard_normal(n)
    return out


def standard_downmix(signals: np.ndarray, layout: str = "5.1") -> np.ndarray:
    """The mono mix by hand: MONO_WEIGHTS per channel, divided by their sum when it exceeds 1."""
    names = [c.name for c in av.AudioLayout(layout).channels]
    weights = np.array([MONO_WEIGHTS[name] for name in names])
    weights /= max(weights.sum(), 1.0)
    return (weights[:, None] * signals.astype(np.float64)).sum(axis=0).astype(np.float32)


def write_surround(path: str | Path, n_frames: int = 50, fps: int = 25, size: tuple[int, int] = (64, 48),
                   layout: str = "5.1", signals: np.ndarray | None = None) -> Path:
    """Video + PCM float audio of `layout` (`surround_signals` unless given) in QuickTime."""
    path, rate = Path(path), Fraction(fps)
    n = int(round(n_frames / rate * AUDIO_RATE))
    signals = surround_signals(n, layout, fps=rate) if signals is None else signals
    with av.open(str(path), "w") as container:
        video = _video_stream(container, "libx264", rate, size, 12, 0)
        packets = _video_packets(video, _frames(n_frames, size, texture=False))
        stream = container.add_stream("pcm_f32le", rate=AUDIO_RATE, layout=layout)
        packets += _audio_packets(stream, signals, AUDIO_RATE, layout)
        _mux_in_order(container, packets)
    return path


def remux(src: str | Path, dst: str | Path, keep: list[int] | None = None, retime: Callable | None = None,
          mono: np.ndarray | None = None, audio_codec: str = "pcm_f32le") -> Path:
    """Copy the packets of streams `keep` (default all) of `src` into `dst` (container from the
    suffix); `retime(packet)` may change their times; `mono` adds a new mono track of that signal
    (at AUDIO_RATE) instead of the source's audio."""
    dst = Path(dst)
    with av.open(str(src)) as source, av.open(str(dst), "w") as out:
        wanted = [s for s in source.streams if (keep is None or s.index in keep)
                  and not (mono is not None and s.type == "audio")]
        streams = {}
        for s in wanted:
            streams[s.index] = out.add_stream_from_template(s)
            streams[s.index].metadata.update(s.metadata)
            streams[s.index].disposition = s.disposition
        added = out.add_stream(audio_codec, rate=AUDIO_RATE, layout="mono") if mono is not None else None
        packets = []
        for packet in source.demux(wanted):
            if packet.dts is None and packet.pts is None:
                continue
            if retime is not None:
                retime(packet)
            packet.stream = streams[packet.stream.index]
            packets.append(packet)
        if added is not None:
            packets += _audio_packets(added, mono[None], AUDIO_RATE, "mono")
        _mux_in_order(out, packets)
    return dst
