"""Presets: the published preprocessing of public expression models a user downloads elsewhere.

`--face-encoder hsemotion_enet_b0 --face-weights enet_b0_8_best_vgaf.onnx` runs the file with the
input size and normalisation its authors use, so the features are the ones their code computes.
Sources (docs/encoders.md, "Presets"): HSEmotion / hsemotion-onnx `HSEmotionRecognizer.preprocess`
and EmotiEffLib's recognisers: RGB face, resized (bilinear) to the model's side, /255, then
(x - mean) / std per channel, NCHW. The preset's default layer is `penultimate`: the vector fed to
the classifier (1280-d for EfficientNet-B0, 1408-d for B2), the one their feature extractors use.
"""

from __future__ import annotations

from dataclasses import dataclass

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preset:
    name: str
    format: str                  # "onnx" | "torchscript"
    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    files: tuple[str, ...]       # the published file names this preset is exact for
    source: str
    layer: str = "penultimate"

    def face_input(self) -> dict:
        return {"size": self.size, "colour": "RGB", "scale": 1.0 / 255.0, "mean": list(self.mean),
                "std": list(self.std), "layout": "NCHW"}


_HSE = "HSEmotion (A. Savchenko), AffectNet-trained, Apache-2.0"
_EMOTIEFF = "EmotiEffLib (A. Savchenko et al.), AffectNet-trained, Apache-2.0"
PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("hsemotion_enet_b0", "onnx", 224, IMAGENET_MEAN, IMAGENET_STD,
           ("enet_b0_8_best_vgaf.onnx", "enet_b0_8_best_afew.onnx", "enet_b0_8_va_mtl.onnx"),
           _HSE),
    Preset("hsemotion_enet_b2", "onnx", 260, IMAGENET_MEAN, IMAGENET_STD,
           ("enet_b2_8.onnx", "enet_b2_7.onnx"), _HSE),
    Preset("emotiefflib_mbf", "onnx", 112, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), ("mbf_va_mtl.onnx",), _EMOTIEFF),
    Preset("emotiefflib_mobilevit", "onnx", 224, IMAGENET_MEAN, IMAGENET_STD, ("mobilevit_va_mtl.onnx",),
           _EMOTIEFF),
)}


def preset_for_file(filename: str) -> Preset | None:
    """The preset whose published file names include `filename` (to hint at it), or None."""
    for preset in PRESETS.values():
        if filename in preset.files:
            return preset
    return None
