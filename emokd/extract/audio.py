"""Decode a video's audio onto the video's clock (docs/architecture.md), in bounded memory.

The video clock has t = 0 at the presentation time of frame 0 (`emokd.index.probe.probe_video`).
The track is the one `emokd.index.tracks.choose_track` picks (the default-disposition track, else
the first; `--audio-track N` to choose). It is decoded with PyAV (decord's AudioReader leaks),
mixed to mono with FFmpeg's standard downmix for its channel layout (LFE left out, centre and
surrounds at -3 dB against the fronts, scaled so that full scale stays full scale: stereo is
the mean of its two channels, 5.1 dialogue in the centre lands at -10.7 dB), resampled to 22050 Hz
with soxr and shifted by the difference of the two streams' start times, so that sample 0 of
`AudioTrack.signal` is video time 0. Decoding, mixing and resampling stream in chunks straight
into the output array: memory is the 22050 Hz mono signal (5.3 MB per minute) plus a few frames,
whatever the length or the source rate of the track.

No audio track, an undecodable one, or one shorter than the video gives zeros there, and
`has_audio` / `valid_start` / `n_valid` say which samples are real.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import av
import av.filter
import numpy as np
import soxr

from emokd.constants import SAMPLE_RATE
from emokd.errors import DataError
from emokd.index.probe import VideoInfo, open_media
from emokd.index.tracks import AudioTrackInfo, choose_track

log = logging.getLogger(__name__)

# FFmpeg's rematrixing with rematrix_maxval=1: its standard matrix, normalised when a row's
# coefficients sum past 1 (what `ffmpeg -ac 1` gives for any integer output format)
DOWNMIX = "ffmpeg standard downmix to mono (LFE 0, centre and surrounds -3 dB, normalised)"


@dataclass
class AudioTrack:
    """Mono float32 at `sample_rate`; sample 0 = video time 0; real audio in [valid_start, n_valid)."""

    signal: np.ndarray
    n_valid: int                # exclusive end of the decoded audio on the video clock (0: none)
    has_audio: bool
    valid_start: int = 0        # first sample holding decoded audio (> 0 when audio starts late)
    sample_rate: int = SAMPLE_RATE
    source_rate: int = 0        # the stream's own sample rate
    offset_s: float = 0.0       # video-clock time of the stream's first decoded sample
    info: AudioTrackInfo | None = None   # the track used
    layout: str = ""            # the channel layout that was mixed to mono

    def record(self) -> dict | None:
        """What the cache stores about the audio of a video (None: no audio track)."""
        if self.info is None:
            return None
        return {**self.info.record(), "mixed_layout": self.layout, "downmix": DOWNMIX,
                "offset_s": round(self.offset_s, 6), "decoded": bool(self.has_audio)}


class _MonoMixer:
    """Decoded frames -> float32 mono at one fixed rate, through an FFmpeg `aresample` graph that is
    rebuilt whenever the frames' format, layout or rate change."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.layout = ""
        self._key = None
        self._graph = None

    def _build(self, frame: av.AudioFrame) -> None:
        layout = frame.layout.name
        if not layout or "channels" in layout:       # no channel mask: FFmpeg's default for the count
            layout = av.AudioLayout(f"{len(frame.layout.channels)}c").name
        graph = av.filter.Graph()
        source = graph.add("abuffer", sample_rate=str(frame.sample_rate), sample_fmt=frame.format.name,
                           channel_layout=layout, time_base=f"1/{frame.sample_rate}")
        mix = graph.add("aresample", f"out_chlayout=mono:out_sample_fmt=flt:out_sample_rate={self.rate}"
                                     ":rematrix_maxval=1")
        sink = graph.add("abuffersink")
        source.link_to(mix)
        mix.link_to(sink)
        graph.configure()
        self._graph, self._key, self.layout = graph, (frame.format.name, frame.layout.name, frame.sample_rate), layout

    def _pull(self) -> list[np.ndarray]:
        out = []
        while True:
            try:
                out.append(self._graph.pull().to_ndarray().reshape(-1).astype(np.float32, copy=False))
            except (av.error.BlockingIOError, av.error.EOFError):
                return out

    def push(self, frame: av.AudioFrame | None) -> np.ndarray:
        """Mono samples of `frame` (None: whatever the graph still holds)."""
        out: list[np.ndarray] = []
        key = None if frame is None else (frame.format.name, frame.layout.name, frame.sample_rate)
        if self._graph is not None and (frame is None or key != self._key):
            self._graph.push(None)
            out += self._pull()
            self._graph = None
        if frame is not None:
            if self._graph is None:
                self._build(frame)
            frame.pts = None                          # the graph needs no times; gaps are handled here
            self._graph.push(frame)
            out += self._pull()
        return np.concatenate(out) if out else np.zeros(0, np.float32)


class _Placer:
    """Resampled samples written onto the video clock as they come (zeros stay where none arrive)."""

    def __init__(self, signal: np.ndarray, offset: int) -> None:
        self.signal, self.offset, self.count = signal, offset, 0

    def write(self, samples: np.ndarray) -> None:
        lo = self.offset + self.count
        a, b = max(lo, 0), min(lo + len(samples), len(self.signal))
        if b > a:
            self.signal[a:b] = samples[a - lo:b - lo]
        self.count += len(samples)

    def valid(self) -> tuple[int, int]:
        """(valid_start, n_valid) of what was written."""
        dst0, src0 = max(self.offset, 0), max(-self.offset, 0)
        n = max(min(self.count - src0, len(self.signal) - dst0), 0)
        return dst0, dst0 + n


def _decode_into(path: Path, track: AudioTrackInfo, video_start: float, signal: np.ndarray,
                 sample_rate: int) -> AudioTrack | None:
    """Decode `track` into `signal` (video clock); None when it yields no sample."""
    with open_media(path) as container:
        stream = container.streams[track.stream_index]
        mixer = resampler = placer = None
        cursor, t_first, rate, gaps = 0, 0.0, 0, 0

        def emit(mono: np.ndarray, last: bool = False) -> None:
            out = resampler.resample_chunk(mono, last=last) if resampler is not None else mono
            placer.write(out)

        try:
            for frame in container.decode(stream):
                if frame.samples == 0:
                    continue
                if mixer is None:
                    t_first, rate = (frame.time or 0.0), frame.sample_rate
                    mixer = _MonoMixer(rate)
                    if rate != sample_rate:
                        resampler = soxr.ResampleStream(rate, sample_rate, 1, dtype="float32", quality="HQ")
                    placer = _Placer(signal, int(round((t_first - video_start) * sample_rate)))
                if frame.time is not None:
                    pos = int(round((frame.time - t_first) * rate))
                    if pos - cursor > rate // 1000:            # a hole of more than 1 ms: keep the clock
                        for lo in range(cursor, pos, rate):
                            emit(np.zeros(min(rate, pos - lo), np.float32))
                        cursor, gaps = pos, gaps + 1
                mono = mixer.push(frame)
                emit(mono)
                cursor += len(mono)
        except av.error.FFmpegError as exc:
            log.warning("%s: audio decoding stopped at %.2f s (%s)", path, cursor / max(rate, 1), exc)
        if mixer is None:
            return None
        emit(mixer.push(None), last=True)
        if gaps:
            log.info("%s: %d gaps in the audio timestamps filled with silence", path, gaps)
    valid_start, n_valid = placer.valid()
    return AudioTrack(signal, n_valid, n_valid > valid_start, valid_start, sample_rate, rate,
                      t_first - video_start, track, mixer.layout)


def load_audio(path: str | Path, info: VideoInfo, sample_rate: int = SAMPLE_RATE,
               track: int | None = None) -> AudioTrack:
    """The file's audio, mono at `sample_rate`, sample 0 = video time 0, covering the whole video.

    `track`: the N-th audio track (from 0); None: the default-disposition track, else the first.
    A `track` the file lacks raises DataError; a track that cannot be decoded gives no audio.
    """
    path = Path(path)
    total = int(math.ceil(info.duration * sample_rate))
    signal = np.zeros(total, np.float32)
    chosen = choose_track(info.audio_tracks, track, path)
    decoded = None
    if chosen is not None:
        try:
            decoded = _decode_into(path, chosen, info.start_time, signal, sample_rate)
        except DataError as exc:
            log.warning("%s", exc)
    if decoded is None:
        what = "no audio track" if chosen is None else f"audio {chosen.describe()} gave no samples"
        log.info("%s: %s: audio windows are zeros (audio_ok False)", path, what)
        signal[:] = 0.0
        return AudioTrack(signal, 0, False, info=chosen)
    if len(info.audio_tracks) > 1:
        log.info("%s: audio from %s of %d tracks", path, chosen.describe(), len(info.audio_tracks))
    if decoded.n_valid < total:
        log.info("%s: audio ends %.3f s before the video", path, (total - decoded.n_valid) / sample_rate)
    return decoded
