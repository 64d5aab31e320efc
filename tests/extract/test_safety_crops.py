"""Crops are never silently wrong: every accepted image format and digit width is read, at the exact
frame; a folder numbered from 00000 is refused (or read 0-based when the setting says so); an empty
folder falls back to the detector, and a video without a single face says so on the console."""

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from emokd.cache import FeatureCache
from emokd.cli import main

pytestmark = pytest.mark.slow


def _tree(root, names, n=20):
    from emokd.testing.affwild2_tree import TreeVideo, write_affwild2_tree

    return write_affwild2_tree(root, [TreeVideo(name, n, 25, crop_gaps=(4,), audio=None, size=(96, 96))
                                      for name in names])


def _encoder():
    from emokd.extract.config import ExtractConfig
    from emokd.extract.encoders import load_encoders

    return load_encoders(ExtractConfig().resolved()).face


def _face_of(encoder, path):
    """The face encoder's output on one crop file, as the cache stores it (float16)."""
    from emokd.extract.faces import to_size

    image = np.asarray(Image.open(path).convert("RGB"))
    return encoder.encode_numpy(to_size(image, 112)[None])[0].astype(np.float16).astype(np.float32)


def _extract(tree, url, *extra):
    return CliRunner().invoke(main, ["extract-features", str(tree.root), "--cache", str(url), "--no-progress",
                                     *extra])


def test_png_crops_four_digit_names_empty_and_unreadable_folders(tmp_path, default_weights):
    """Problems: .png crops were indexed but never read; 4-digit names and an empty folder lost
    every face silently; "no face in any frame" reached only the log file."""
    tree = _tree(tmp_path / "data", ["pngs", "four", "empty", "garbage"])
    crops = tree.root / "cropped_aligned"
    for path in sorted((crops / "pngs").glob("*.jpg")):
        Image.open(path).save(path.with_suffix(".png"))
        path.unlink()
    for path in sorted((crops / "four").glob("*.jpg")):
        path.rename(path.with_name(f"{int(path.stem):04d}.jpg"))
    for path in (crops / "empty").iterdir():
        path.unlink()
    for path in (crops / "garbage").iterdir():
        path.write_bytes(b"not a jpeg")

    url = tmp_path / "cache.zarr"
    result = _extract(tree, url)
    assert result.exit_code == 0, result.output
    assert (f"note empty: crop folder {crops / 'empty'} holds no crop image (NNNNN.jpg, .jpeg or .png); "
            "faces from the detector") in result.output
    assert "note garbage: no face in any of its 20 frames (crops); face_ok is False throughout" in result.output

    cache, encoder = FeatureCache.open(str(url)), _encoder()
    for vid, pattern in (("pngs", "{:05d}.png"), ("four", "{:04d}.jpg")):
        arrays = cache.read_video(vid)
        np.testing.assert_array_equal(np.flatnonzero(~arrays["face_ok"]), [4], err_msg=vid)  # the one gap
        for k in (0, 3, 5, 19):  # row k is the crop file numbered k + 1
            np.testing.assert_allclose(arrays["face"][k].astype(np.float32),
                                       _face_of(encoder, crops / vid / pattern.format(k + 1)), rtol=1e-2, atol=1e-2)
        assert cache.video_attrs(vid)["face_source"] == "crops"
    assert cache.video_attrs("empty")["face_source"] == "detector"
    assert not cache.read_video("garbage")["face_ok"].any()


def test_a_folder_numbered_from_zero_is_refused_or_read_zero_based_on_request(tmp_path, default_weights):
    """Problem: crops named 00000.jpg... were read 1-based, so 29 of 30 frames carried the next
    frame's face, with exit status 0."""
    tree = _tree(tmp_path / "data", ["zero"])
    folder = tree.root / "cropped_aligned" / "zero"
    for path in sorted(folder.glob("*.jpg")):  # 00001.jpg (frame 0) -> 00000.jpg, ...
        path.rename(path.with_name(f"{int(path.stem) - 1:05d}.jpg"))

    url = tmp_path / "cache.zarr"
    refused = _extract(tree, url)
    assert refused.exit_code == 2 and "Traceback" not in refused.output, refused.output
    assert f"error: crop folder {folder} starts at 00000.jpg, but crop names are 1-based" in refused.output
    assert "Aff-Wild2 rule" in refused.output and "crop_numbering: 0-based" in refused.output
    assert not url.exists()  # refused before a cache was created

    result = _extract(tree, url, "--crop-numbering", "0-based")
    assert result.exit_code == 0, result.output
    cache, encoder = FeatureCache.open(str(url)), _encoder()
    arrays = cache.read_video("zero")
    assert cache.video_attrs("zero")["crop_numbering"] == "0-based"
    assert cache.settings["crop_numbering"] == "0-based"
    np.testing.assert_array_equal(np.flatnonzero(~arrays["face_ok"]), [4])
    for k in (0, 7, 19):  # row k is the file numbered k, not k + 1
        np.testing.assert_allclose(arrays["face"][k].astype(np.float32), _face_of(encoder, folder / f"{k:05d}.jpg"),
                                   rtol=1e-2, atol=1e-2)
    assert not np.allclose(arrays["face"][0].astype(np.float32), _face_of(encoder, folder / "00001.jpg"),
                           rtol=1e-2, atol=1e-2)
