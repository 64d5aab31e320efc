"""Source videos as URLs on a real S3 server (moto on loopback): a worker streams the object into
its scratch space, decodes the local copy, deletes it; the identity is the URL with size and ETag."""

import pytest

from emokd.errors import DataError
from emokd.extract.source_files import local_source, scratch_folder, source_identity
from emokd.index.dataset import index_dataset


def test_a_url_source_is_downloaded_to_scratch_and_deleted(s3, bucket, clips, tmp_path, monkeypatch):
    (item,) = [i for i in index_dataset(clips.url_manifest).items if i.video_id == "clips/clip1"]
    assert item.video_path == clips.urls["clip1"] and item.n_frames is None  # kept as a URL, not probed
    monkeypatch.setenv("NODE_SCRATCH", str(tmp_path / "node"))
    with local_source(item, None, "$NODE_SCRATCH/emokd") as (local, identity):
        assert local.video_path.parent.parent == tmp_path / "node" / "emokd"
        assert local.video_path.name == "clip1.mp4"  # the suffix stays: decoders go by it
        assert local.video_path.read_bytes() == clips.videos["clip1"].read_bytes()
        assert local.video_id == item.video_id and local.labels is item.labels
    assert identity == {"url": clips.urls["clip1"], "size": clips.videos["clip1"].stat().st_size,
                        "etag": s3.filesystem().info(clips.urls["clip1"][5:])["ETag"]}
    assert not list((tmp_path / "node").rglob("*.mp4"))  # deleted after the task
    with pytest.raises(RuntimeError):
        with local_source(item, None, str(tmp_path / "node")):
            raise RuntimeError("the task failed")
    assert not list((tmp_path / "node").rglob("*.mp4"))  # deleted whatever happened


def test_a_replaced_object_has_another_identity_and_a_missing_one_is_named(s3, bucket, clips):
    fs = s3.filesystem()
    url = f"{bucket}/v.mp4"
    fs.put_file(str(clips.videos["clip0"]), url[5:])
    before = source_identity(url)
    fs.put_file(str(clips.videos["clip2"]), url[5:])
    after = source_identity(url)
    assert before["url"] == after["url"] and before["etag"] != after["etag"]
    with pytest.raises(DataError, match=f"{bucket}/nothing.mp4: source video not found"):
        source_identity(f"{bucket}/nothing.mp4")
    local = clips.videos["clip0"]
    assert source_identity(local)["path"] == str(local.resolve())


def test_scratch_defaults_to_the_system_temporary_folder_outside_a_worker(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    assert scratch_folder(None) == tmp_path
