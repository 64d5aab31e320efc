"""Does a refactor change results? Extract a cache and train a teacher with two checkouts, compare.

    python benchmarks/same_results.py --before <git rev> [--work DIR] [--epochs 2]

The same generated Aff-Wild2-style tree (crop files, two-person video, gaps; written once by this
checkout's `emokd.testing`) is extracted and a teacher trained on it with the CLI of both
checkouts: `<rev>` (a temporary git worktree) and this working tree, each in its own process
with its own package on PYTHONPATH. Then every array of the two caches is compared byte for byte
(read with plain zarr, so the comparison does not depend on either version's API) and every
metric of the two runs' metrics.csv (wall-clock columns left out). Prints one line per difference
and a summary; exit 1 when anything differs.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import zarr

REPO = Path(__file__).resolve().parents[1]
TIME_COLUMNS = ("seconds", "time", "elapsed", "epoch_s", "per_s")  # wall-clock figures differ run to run


def run(cmd: list[str], package_root: Path, cwd: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(package_root), OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "emokd", *cmd], cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{package_root}: emokd {' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")


def job(package_root: Path, data: Path, out: Path, epochs: int) -> None:
    out.mkdir(parents=True)
    run(["extract-features", str(data), "--cache", str(out / "cache.zarr"), "--workers", "1",
         "--no-progress"], package_root, out)
    run(["train-from-cache", "--cache", str(out / "cache.zarr"), "--out", str(out / "teacher"),
         "--epochs", str(epochs), "--device", "cpu", "--seed", "0", "--batch-size", "64"], package_root, out)


def arrays(path: Path) -> dict[str, np.ndarray]:
    found = {}

    def walk(group, prefix):
        for name, member in group.members():
            key = f"{prefix}/{name}"
            if isinstance(member, zarr.Array):
                found[key] = member[...]
            else:
                walk(member, key)

    walk(zarr.open_group(str(path), mode="r"), "")
    return found


def metrics(path: Path) -> list[dict[str, str]]:
    with open(path / "metrics.csv", newline="") as f:
        return [{k: v for k, v in row.items() if not any(t in k for t in TIME_COLUMNS)} for row in csv.DictReader(f)]


def compare(a: Path, b: Path) -> list[str]:
    diffs = []
    xa, xb = arrays(a / "cache.zarr"), arrays(b / "cache.zarr")
    for key in sorted(set(xa) | set(xb)):
        if key not in xa or key not in xb:
            diffs.append(f"array {key}: only in {'after' if key in xb else 'before'}")
        elif xa[key].dtype != xb[key].dtype or xa[key].shape != xb[key].shape:
            diffs.append(f"array {key}: {xa[key].dtype}{xa[key].shape} vs {xb[key].dtype}{xb[key].shape}")
        elif xa[key].tobytes() != xb[key].tobytes():
            diffs.append(f"array {key}: values differ")
    ma, mb = metrics(a / "teacher"), metrics(b / "teacher")
    if len(ma) != len(mb):
        diffs.append(f"metrics.csv: {len(ma)} rows vs {len(mb)}")
    for row, (ra, rb) in enumerate(zip(ma, mb)):
        for key in sorted(set(ra) | set(rb)):
            if ra.get(key) != rb.get(key):
                diffs.append(f"metrics.csv row {row} {key}: {ra.get(key)} vs {rb.get(key)}")
    print(f"compared {len(xa)} arrays ({sum(x.nbytes for x in xa.values())} bytes) and "
          f"{len(ma)} epochs x {len(ma[0]) if ma else 0} metrics")
    return diffs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="git revision to compare this working tree with")
    parser.add_argument("--work", type=Path, help="scratch folder (default: a temporary one)")
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="emokd-same-"))
    before = work / "before-checkout"
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-q", str(before), args.before], check=True)
    try:
        sys.path.insert(0, str(REPO))
        from emokd.testing.affwild2_tree import write_affwild2_tree

        write_affwild2_tree(work / "data")
        job(before, work / "data", work / "before", args.epochs)
        job(REPO, work / "data", work / "after", args.epochs)
        diffs = compare(work / "before", work / "after")
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(before)], check=False)
    for line in diffs:
        print(line)
    print(f"{args.before} vs working tree: {'SAME arrays and metrics' if not diffs else f'{len(diffs)} differences'}"
          f" (outputs in {work})")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
