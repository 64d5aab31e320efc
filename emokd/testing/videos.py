"""Generated test videos whose frames and audio encode their own time, so alignment can be tested to the frame and the sample.

Every frame carries its index as a 3 x 8 grid of black/white blocks (16 index bits plus an
8-bit check) over the top 60 % of the picture's centre square; `read_frame_index` reads it back
from a decoded frame or from its centre square resized (what `crops.whole_frame` makes). Audio encodes time on the *video* clock:

- ``"clicks"``: a one-sample impulse at the start of every frame's display interval
  (t_k = k / fps), so the exclusive end sample of frame k's audio window is the click of k + 1;
- ``"tone-steps"``: a sine whose frequency steps at every frame boundary;
- ``"speechlike"``: noise shaped by a syllable-rate envelope (for benchmarks and encoders);
- ``None``: no audio stream.

`emokd.testing.affwild2_tree.write_affwild2_tree` writes a small Aff-Wild2-style dataset from these.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw

GRID_ROWS, GRID_COLS = 3, 8
PATTERN_HEIGHT = 0.6          # fraction of the frame height holding the index grid
AUDIO_CODEC_BY_SUFFIX = {".mp4": "aac", ".mov": "aac", ".avi": "pcm_s16le", ".mkv": "flac"}
VIDEO_CODECS = {"h264": "libx264", "mpeg4": "mpeg4", "hevc": "libx265", "mjpeg": "mjpeg"}


def as_frame_rate(fps: float | Fraction | str) -> Fraction:
    """29.97 -> 30000/1001, 23.976 -> 24000/1001, 25 -> 25: the rates cameras actually use."""
    if isinstance(fps, Fraction):
        return fps
    if isinstance(fps, str):
        return Fraction(fps)
    ntsc = round(fps * 1.001)
    if abs(fps - round(fps)) > 1e-6 and abs(fps - ntsc / 1.001) < 1e-3:
        return Fraction(ntsc * 1000, 1001)
    return Fraction(fps).limit_denominator(1001)


def _check_byte(index: int) -> int:
    return (index & 0xFF) ^ (index >> 8) ^ 0xA5


def index_bits(index: int) -> np.ndarray:
    if not 0 <= index < 1 << 16:
        raise ValueError(f"frame index {index} does not fit in 16 bits")
    value = index | (_check_byte(index) << 16)
    return np.array([(value >> b) & 1 for b in range(GRID_ROWS * GRID_COLS)], dtype=bool)


def draw_frame(index: int, size: tuple[int, int] = (160, 120), face: bool = False,
               texture: np.ndarray | None = None) -> np.ndarray:
    """RGB uint8 (h, w, 3) picture of frame `index`: the index grid on top, a face or texture below."""
    w, h = size
    img = np.full((h, w, 3), 128, np.uint8)
    if texture is not None:
        shift = (3 * index) % texture.shape[1]
        img[:] = np.roll(texture, shift, axis=1)[:h, :w]
    top = int(round(h * PATTERN_HEIGHT))
    side = min(w, h)
    x0 = (w - side) // 2
    bits = index_bits(index).reshape(GRID_ROWS, GRID_COLS)
    rows = np.linspace(0, top, GRID_ROWS + 1).round().astype(int)
    cols = (x0 + np.linspace(0, side, GRID_COLS + 1)).round().astype(int)
    for r in range(GRID_ROWS):
        for c in range(GRID_COLS):
            img[rows[r]:rows[r + 1], cols[c]:cols[c + 1]] = 255 if bits[r, c] else 0
    if face:
        pil = Image.fromarray(img)
        draw = ImageDraw.Draw(pil)
        fh = h - top
        cx, cy, rx, ry = w / 2, top + fh / 2, min(w / 5, fh * 0.4), fh * 0.45
        draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=(224, 172, 140))
        for ex in (cx - rx * 0.4, cx + rx * 0.4):
            draw.ellipse([ex - rx * 0.12, cy - ry * 0.35, ex + rx * 0.12, cy - ry * 0.1], fill=(30, 30, 30))
        mouth_open = ry * (0.05 + 0.1 * (index % 10) / 9)
        draw.ellipse([cx - rx * 0.35, cy + ry * 0.3 - mouth_open, cx + rx * 0.35, cy + ry * 0.3 + mouth_open],
                     fill=(140, 40, 50))
        img = np.asarray(pil)
    return img


def read_frame_index(image: np.ndarray) -> int:
    """The index drawn by `draw_frame`, read from a decoded frame or a resized whole-frame crop.

    Raises ValueError when the check bits disagree (the picture is not an intact index frame).
    """
    image = np.asarray(image)
    grey = image.mean(axis=2) if image.ndim == 3 else image.astype(float)
    h, w = grey.shape
    side = min(w, h)
    grey = grey[:, (w - side) // 2:(w - side) // 2 + side]
    w = side
    top = h * PATTERN_HEIGHT
    value = 0
    for r in range(GRID_ROWS):
        for c in range(GRID_COLS):
            y0, y1 = top * (r + 0.25) / GRID_ROWS, top * (r + 0.75) / GRID_ROWS
            x0, x1 = w * (c + 0.25) / GRID_COLS, w * (c + 0.75) / GRID_COLS
            cell = grey[int(y0):max(int(y1), int(y0) + 1), int(x0):max(int(x1), int(x0) + 1)]
            if cell.mean() > 127:
                value |= 1 << (r * GRID_COLS + c)
    index, check = value & 0xFFFF, value >> 16
    if check != _check_byte(index):
        raise ValueError(f"frame pattern check failed (read {index}, check {check:#x})")
    return index


def make_texture(size: tuple[int, int], seed: int = 0) -> np.ndarray:
    """Smooth random colour texture (h, w, 3) uint8 so that decoding has realistic work to do."""
    w, h = size
    rng = np.random.default_rng(seed)
    coarse = rng.integers(40, 215, size=(max(h // 16, 2), max(w // 16, 2), 3), dtype=np.uint8)
    smooth = np.asarray(Image.fromarray(coarse).resize((w, h), Image.BILINEAR), np.int16)
    noise = rng.integers(-12, 13, size=(h, w, 3), dtype=np.int16)
    return np.clip(smooth + noise, 0, 255).astype(np.uint8)


# ---------------------------------------------------------------- audio on the video clock

def synth_audio(kind: str, rate: int, t_start: float, n_samples: int, fps: Fraction,
                seed: int = 0) -> np.ndarray:
    """Mono float32 samples for video-clock times t_start + i / rate (i < n_samples)."""
    t = t_start + np.arange(n_samples) / rate
    if kind == "clicks":
        out = np.zeros(n_samples, np.float32)
        k_first = int(np.ceil(t_start * fps - 1e-9))
        k_last = int(np.floor((t_start + n_samples / rate) * fps))
        for k in range(max(k_first, 0), k_last + 1):
            i = int(round((k / fps - t_start) * rate))
            if 0 <= i < n_samples:
                out[i] = 0.8
        return out
    if kind == "tone-steps":
        k = np.floor(t * float(fps) + 1e-9).astype(np.int64)
        freq = 300.0 + 40.0 * (k % 40)
        phase = 2 * np.pi * np.cumsum(freq) / rate
        return (0.5 * np.sin(phase)).astype(np.float32)
    if kind == "speechlike":
        rng = np.random.default_rng(seed)
        noise = rng.standard_normal(n_samples)
        kernel = np.hanning(31)
        voiced = np.convolve(noise, kernel / kernel.sum(), mode="same")
        envelope = 0.5 * (1 + np.sin(2 * np.pi * 4.0 * t)) * (0.5 + 0.5 * np.sin(2 * np.pi * 0.3 * t) ** 2)
        pitch = 0.3 * np.sin(2 * np.pi * (120 + 20 * np.sin(2 * np.pi * 0.5 * t)) * t)
        return (0.6 * envelope * (voiced * 4 + pitch)).clip(-1, 1).astype(np.float32)
    raise ValueError(f"unknown synthetic audio kind {kind!r} (clicks, tone-steps, speechlike)")


@dataclass
class SyntheticVideo:
    """What `make_video` wrote; times are on the video clock (t = 0 at frame 0)."""

    path: Path
    n_frames: int
    fps: Fraction
    size: tuple[int, int]
    audio: str | None
    audio_rate: int
    audio_codec: str | None
    audio_start_s: float        # video-clock time of the first audio sample
    audio_end_s: float

    def frame_start(self, k) -> np.ndarray:
        return np.asarray(k, dtype=np.float64) / float(self.fps)

    def frame_end(self, k) -> np.ndarray:
        return (np.asarray(k, dtype=np.float64) + 1) / float(self.fps)


def make_video(path: str | Path, n_frames: int, fps: float | Fraction = 30, size: tuple[int, int] = (160, 120),
               codec: str = "h264", audio: str | None = "clicks", audio_offset_s: float = 0.0,
               audio_duration_s: float | None = None, audio_first: bool = False, face: bool = False,
               audio_codec: str | None = None, audio_rate: int = 44100, texture: bool = False,
               gop: int = 12, seed: int = 0) -> SyntheticVideo:
    """Write a test video; the container follows the suffix (.mp4, .avi, .mov, .mkv).

    audio_offset_s > 0: the audio stream starts that much after the first frame (container start
    times). audio_offset_s < 0: the video stream starts later (snapped to whole frames).
    audio_duration_s: audio length (default: until the video's end). audio_first: the audio stream
    is stream 0 of the container.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = as_frame_rate(fps)
    w, h = size
    video_delay = int(round(-audio_offset_s * rate)) if audio_offset_s < 0 else 0   # in frames
    audio_delay_s = audio_offset_s if audio_offset_s > 0 else 0.0                   # container time
    video_start_s = video_delay / rate
    duration_s = n_frames / rate
    codec_name = VIDEO_CODECS.get(codec, codec)
    if audio is not None:
        audio_codec = audio_codec or AUDIO_CODEC_BY_SUFFIX.get(path.suffix.lower(), "aac")
    # a fine movie timescale keeps edit lists (audio start offsets) sample-exact in mp4/mov
    options = {"movie_timescale": str(audio_rate)} if path.suffix.lower() in (".mp4", ".mov") else {}
    with av.open(str(path), mode="w", options=options) as container:
        astream = None
        if audio is not None and audio_first:
            astream = container.add_stream(audio_codec, rate=audio_rate, layout="mono")
        vstream = container.add_stream(codec_name, rate=rate)
        vstream.width, vstream.height, vstream.pix_fmt = w, h, "yuv420p"
        vstream.codec_context.gop_size = gop
        if codec_name == "libx264":
            vstream.options = {"preset": "veryfast", "crf": "16"}
        elif codec_name == "libx265":
            vstream.options = {"preset": "ultrafast", "crf": "18", "x265-params": "log-level=error"}
            vstream.codec_tag = "hvc1"
        elif codec_name == "mpeg4":
            vstream.bit_rate = max(2_000_000, w * h * 40)
        if audio is not None and astream is None:
            astream = container.add_stream(audio_codec, rate=audio_rate, layout="mono")
        texture_img = make_texture((w + 64, h), seed) if texture else None

        audio_packets, video_packets = [], []
        a_start_clock = audio_delay_s - float(video_start_s)          # on the video clock
        n_audio = 0
        if astream is not None:
            a_len = audio_duration_s if audio_duration_s is not None else float(duration_s) - a_start_clock
            n_audio = max(int(round(a_len * audio_rate)), 0)
            signal = synth_audio(audio, audio_rate, a_start_clock, n_audio, rate, seed)
            first_pts = int(round(audio_delay_s * audio_rate))
            chunk = 1024
            for i in range(0, n_audio, chunk):
                piece = signal[i:i + chunk].reshape(1, -1)
                frame = av.AudioFrame.from_ndarray(piece, format="flt", layout="mono")
                frame.sample_rate = audio_rate
                frame.pts = first_pts + i
                frame.time_base = Fraction(1, audio_rate)
                audio_packets.extend(astream.encode(frame))
            audio_packets.extend(astream.encode(None))
        for k in range(n_frames):
            frame = av.VideoFrame.from_ndarray(draw_frame(k, size, face, texture_img), format="rgb24")
            frame.pts = video_delay + k
            frame.time_base = 1 / rate
            video_packets.extend(vstream.encode(frame))
        video_packets.extend(vstream.encode(None))
        # interleave by decode time (audio before video on ties when audio_first)
        order = sorted(
            [(float(p.dts * p.time_base), 0 if audio_first else 1, i, p) for i, p in enumerate(audio_packets)]
            + [(float(p.dts * p.time_base), 1 if audio_first else 0, i, p) for i, p in enumerate(video_packets)],
            key=lambda x: x[:3])
        for *_, packet in order:
            container.mux(packet)
    return SyntheticVideo(path, n_frames, rate, size, audio, audio_rate, audio_codec if audio else None,
                          a_start_clock, a_start_clock + n_audio / audio_rate)


def square_crop(image: np.ndarray, size: int) -> np.ndarray:
    """Centre square of a frame resized to size x size: a stand-in for an aligned face crop."""
    h, w = image.shape[:2]
    side = min(h, w)
    y0, x0 = (h - side) // 2, (w - side) // 2
    return np.asarray(Image.fromarray(image[y0:y0 + side, x0:x0 + side]).resize((size, size), Image.BILINEAR))


def stable_seed(name: str) -> int:
    return zlib.crc32(name.encode())
