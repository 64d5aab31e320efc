"""A small labelled dataset twice: as a generic CSV manifest of local videos, and of the same videos
uploaded to an object store (s3://bucket/prefix/<name>.mp4), with the same item ids and labels.

The object-store tests and benchmark extract both and compare the caches array for array.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emokd.constants import AU_NAMES
from emokd.testing.affwild2_tree import random_labels
from emokd.testing.videos import make_video

HEADER = ["video", "id", "split", "labels", "dataset"]


@dataclass
class UrlDataset:
    local_manifest: Path          # CSV whose `video` column holds local paths
    url_manifest: Path            # the same rows with the uploaded copies' URLs
    names: list[str]
    videos: dict[str, Path]       # name -> local file
    urls: dict[str, str]          # name -> URL of its copy
    n_frames: dict[str, int]
    test_list: Path               # every frame of the validation videos, as an ABAW test list


def _label_csv(path: Path, labels: dict[str, np.ndarray]) -> None:
    lines = ["valence,arousal,expression," + ",".join(AU_NAMES)]
    for va, expr, au in zip(labels["va"], labels["expr"], labels["au"]):
        va_text = "-5,-5" if np.isnan(va).any() else f"{va[0]:.3f},{va[1]:.3f}"
        lines.append(f"{va_text},{int(expr)}," + ",".join(str(int(v)) for v in au))
    path.write_text("\n".join(lines) + "\n")


def write_url_dataset(folder: str | Path, fs, url_prefix: str, n_videos: int = 4, n_frames: int = 40,
                      size: tuple[int, int] = (96, 96), dataset: str = "clips") -> UrlDataset:
    """Videos (half train, half validation, with speech-like audio and a drawn face), their label
    files, both manifests; the videos uploaded with `fs` (an fsspec filesystem) under `url_prefix`."""
    folder = Path(folder)
    (folder / "videos").mkdir(parents=True, exist_ok=True)
    (folder / "labels").mkdir(parents=True, exist_ok=True)
    names = [f"clip{i}" for i in range(n_videos)]
    videos, urls, counts, rows_local, rows_url = {}, {}, {}, [], []
    for i, name in enumerate(names):
        frames = n_frames + 3 * i
        videos[name] = folder / "videos" / f"{name}.mp4"
        make_video(videos[name], frames, 30, size, audio="speechlike", face=True, texture=True, seed=i)
        label_file = folder / "labels" / f"{name}.csv"
        _label_csv(label_file, random_labels(name, frames))
        urls[name] = f"{url_prefix.rstrip('/')}/{name}.mp4"
        fs.put_file(str(videos[name]), urls[name].split("://", 1)[1])
        counts[name] = frames
        split = "train" if i < (n_videos + 1) // 2 else "validation"
        for rows, video in ((rows_local, videos[name]), (rows_url, urls[name])):
            rows.append(",".join([str(video), name, split, str(label_file), dataset]))
    local, remote = folder / "local.csv", folder / "urls.csv"
    local.write_text("\n".join([",".join(HEADER)] + rows_local) + "\n")
    remote.write_text("\n".join([",".join(HEADER)] + rows_url) + "\n")
    test_list = folder / "test_list.txt"
    validation = names[(n_videos + 1) // 2:]
    test_list.write_text("\n".join(["image"] + [f"{dataset}/{name}/{k + 1:05d}.jpg" for name in validation
                                                for k in range(counts[name])]) + "\n")
    return UrlDataset(local, remote, names, videos, urls, counts, test_list)
