"""What a user's network expects as input: the preprocessing spec of ONNX and TorchScript encoders.

A spec says only what differs from the defaults; `resolve_face_input` fills the rest from a
preset (emokd/models/presets.py) and then from these defaults (docs/encoders.md, "Bring your own"):
input size from the model's input shape, RGB, pixel values scaled to [0, 1], mean 0, std 1, NCHW.
Audio: mono 22050 Hz windows in [-1, 1] times `scale`, shaped (B, n) or (B, 1, n) as the model's
input rank says. No torch here: the config imports this module.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from emokd.errors import ConfigError

COLOURS = ("RGB", "BGR")
LAYOUTS = ("NCHW", "NHWC")
AUDIO_LAYOUTS = ("BN", "B1N")


@dataclass
class FaceInput:
    """Face preprocessing; None = not said (the preset's value, else the default)."""

    size: int | None = None             # square input side in pixels; None: the model's input shape
    colour: str | None = None           # channel order: RGB (default) or BGR
    scale: float | None = None          # uint8 pixel value x scale (default 1/255)
    mean: tuple[float, float, float] | None = None   # subtracted after scaling, per channel (default 0)
    std: tuple[float, float, float] | None = None    # divided after the mean (default 1)
    layout: str | None = None           # NCHW (default) or NHWC


@dataclass
class AudioInput:
    """Audio preprocessing of a user's audio network; None = not said."""

    scale: float | None = None          # samples in [-1, 1] x scale (default 1)
    layout: str | None = None           # BN (B, n) or B1N (B, 1, n); None: from the model's input rank


FACE_DEFAULTS = {"colour": "RGB", "scale": 1.0 / 255.0, "mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0),
                 "layout": "NCHW"}


def given(spec) -> dict:
    """The fields of a FaceInput/AudioInput (or a plain dict) that were said, as a plain dict."""
    if spec is None:
        return {}
    items = dataclasses.asdict(spec) if dataclasses.is_dataclass(spec) else dict(spec)
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in items.items() if v is not None}


def resolve_face_input(spec: dict, preset: dict | None, where: str) -> dict:
    """defaults <- preset <- spec; `size` stays None when nobody said it (the model's shape decides)."""
    unknown = sorted(set(spec) - {f.name for f in dataclasses.fields(FaceInput)})
    if unknown:
        raise ConfigError(f"{where}: unknown face input key(s) {unknown}; known: "
                          f"{[f.name for f in dataclasses.fields(FaceInput)]}")
    out = {"size": None, **FACE_DEFAULTS, **(preset or {}), **spec}
    if out["colour"] not in COLOURS:
        raise ConfigError(f"{where}: colour {out['colour']!r} is not one of {list(COLOURS)}")
    if out["layout"] not in LAYOUTS:
        raise ConfigError(f"{where}: layout {out['layout']!r} is not one of {list(LAYOUTS)}")
    for key in ("mean", "std"):
        values = out[key]
        if not isinstance(values, (list, tuple)) or len(values) != 3:
            raise ConfigError(f"{where}: {key} must be 3 numbers (one per channel), got {values!r}")
        out[key] = [float(v) for v in values]
    if any(v == 0 for v in out["std"]):
        raise ConfigError(f"{where}: std must not contain 0, got {out['std']}")
    out["scale"] = float(out["scale"])
    if out["size"] is not None:
        out["size"] = int(out["size"])
        if out["size"] < 1:
            raise ConfigError(f"{where}: size must be >= 1, got {out['size']}")
    return out


def resolve_audio_input(spec: dict, where: str) -> dict:
    unknown = sorted(set(spec) - {f.name for f in dataclasses.fields(AudioInput)})
    if unknown:
        raise ConfigError(f"{where}: unknown audio input key(s) {unknown}; known: "
                          f"{[f.name for f in dataclasses.fields(AudioInput)]}")
    out = {"scale": 1.0, "layout": None, **spec}
    out["scale"] = float(out["scale"])
    if out["layout"] is not None and out["layout"] not in AUDIO_LAYOUTS:
        raise ConfigError(f"{where}: layout {out['layout']!r} is not one of {list(AUDIO_LAYOUTS)}")
    return out


def parse_pairs(pairs: tuple[str, ...] | list[str], where: str) -> dict:
    """`KEY=VALUE` flags -> dict; numbers become ints/floats, `1/255` a float, `a,b,c` a list of floats."""
    out: dict = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{where}: expected KEY=VALUE, got {pair!r}")
        value = value.strip()
        numerator, slash, denominator = value.partition("/")
        if slash:
            try:
                out[key.strip()] = float(numerator) / float(denominator)
                continue
            except (ValueError, ZeroDivisionError):
                raise ConfigError(f"{where}: {key}: expected a number or a fraction, got {value!r}") from None
        if "," in value:
            try:
                out[key.strip()] = [float(v) for v in value.split(",")]
            except ValueError:
                raise ConfigError(f"{where}: {key}: expected numbers separated by commas, got {value!r}") from None
            continue
        for convert in (int, float):
            try:
                out[key.strip()] = convert(value)
                break
            except ValueError:
                continue
        else:
            out[key.strip()] = value
    return out
