"""A video's audio tracks and which one emokd uses (docs/datasets.md, "What emokd does with each quirk").

The track a player and ffmpeg pick: the one marked default (its disposition), else the first.
`--audio-track N` (`ExtractConfig.audio_track`) picks the N-th audio track instead, counted from 0
in file order as ffmpeg's `-map 0:a:N` does; a video without that track is an error naming the
file and its tracks.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import av

from emokd.errors import DataError


@dataclass(frozen=True)
class AudioTrackInfo:
    track: int                 # position among the file's audio streams, from 0
    stream_index: int          # index among all of the file's streams
    codec: str
    sample_rate: int
    channels: int
    layout: str                # FFmpeg's name of the channel layout: mono, stereo, 5.1(side), ...
    language: str | None
    default: bool              # the disposition players pick

    def record(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        lang = f" [{self.language}]" if self.language else ""
        return f"track {self.track}{lang} {self.codec} {self.layout}{' (default)' if self.default else ''}"


def audio_tracks(container) -> list[AudioTrackInfo]:
    """The audio streams of an open PyAV container, in file order."""
    out = []
    for track, stream in enumerate(container.streams.audio):
        ctx = stream.codec_context
        layout = ctx.layout.name if ctx.layout is not None else ""
        language = stream.metadata.get("language")
        out.append(AudioTrackInfo(
            track=track, stream_index=stream.index, codec=ctx.name or "", sample_rate=int(ctx.sample_rate or 0),
            channels=int(ctx.channels or 0), layout=layout,
            language=None if language in (None, "", "und") else language,
            default=bool(stream.disposition & av.stream.Disposition.default)))
    return out


def choose_track(tracks: list[AudioTrackInfo], wanted: int | None, path) -> AudioTrackInfo | None:
    """The track to use: `wanted` if given, else the first default-disposition track, else the first."""
    if wanted is not None:
        if 0 <= wanted < len(tracks):
            return tracks[wanted]
        have = "; ".join(t.describe() for t in tracks) or "no audio track"
        raise DataError(f"{path}: --audio-track {wanted} does not exist (the file has {have}); "
                        "choose another track or leave --audio-track unset")
    if not tracks:
        return None
    return next((t for t in tracks if t.default), tracks[0])
