"""`emokd cache migrate` in place on a real S3 server (moto on loopback): no rename, no directories."""

import numpy as np
import pytest
from click.testing import CliRunner

from cache_v1_support import V1_FILES, write_v1_cache
from emokd.cache import FeatureCache
from emokd.cli import main

pytestmark = pytest.mark.slow


def test_a_version_1_cache_on_s3_migrated_in_place(s3, bucket, tmp_path):
    written = write_v1_cache(tmp_path / "local.zarr")
    url = f"{bucket}/c.zarr"
    fs = s3.filesystem()
    fs.put(str(tmp_path / "local.zarr"), url.removeprefix("s3://"), recursive=True)
    result = CliRunner().invoke(main, ["cache", "migrate", url])
    assert result.exit_code == 0, result.output
    assert "migrated 22 item(s) into 3 shard(s)" in result.output
    cache = FeatureCache.open(url)
    for vid in ("118-30-640x480", "affectnet/007"):
        got = cache.read_item(vid)
        for name, array in written[vid]["values"].items():
            np.testing.assert_array_equal(got[name], array)
    assert cache.verify() == []
    fs.invalidate_cache()
    top = sorted(p.rsplit("/", 1)[-1] for p in fs.ls(url.removeprefix("s3://")))
    assert top == ["failures", "shards", "soft", "zarr.json"]           # version 1 groups, log, config gone
    kept = {p.suffix: p.read_text() for p in tmp_path.glob("emokd-extract-version1-*")}   # the working directory
    assert kept == {".log": V1_FILES["extract.log"], ".yaml": V1_FILES["extract_config.yaml"]}
