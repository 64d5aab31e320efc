"""Writing one shard task: every item probed, the shard created with their rows, each item filled
through the stages of emokd/extract/task.py, one commit for the shard (last).

A source given as a URL is downloaded to the worker's scratch space first (`local_source`) and
kept until the shard is written: the shard's rows are sized from every item's probe before any is
filled. An item that fails is marked failed in the shard (its neighbours are kept); a shard whose
every item failed is removed. Adding sets to a complete shard recomputes only those sets, for the
shard's own items, and refuses an item whose frame count changed since.
"""

from __future__ import annotations

import contextlib
import logging

from emokd.cache.relabel import item_labels
from emokd.cache.source_identity import source_identity
from emokd.errors import DataError, environment_error
from emokd.extract.config import ExtractConfig
from emokd.extract.encoders import Encoders
from emokd.extract.source_files import local_source
from emokd.extract.task import StageClock, _audio_stage, _describe, _face_source, _face_stage, media_attrs
from emokd.extract.timing import ItemProbe, probe_item

log = logging.getLogger(__name__)


def _identity(item, source: dict) -> dict:
    """The source identity of a video (from `local_source`), or of a still's image / a sequence's
    first image."""
    if source or not item.frame_images:
        return source
    out = source_identity(item.frame_images[0])
    if len(item.frame_images) > 1:
        out["n_images"] = len(item.frame_images)
    return out


def _item_face_source(item, cfg: ExtractConfig, row: dict) -> str:
    """Where this item's faces come from; the console note of an unusable crop folder goes to its row."""
    face_source, note = _face_source(item, cfg.face_source, cfg.crop_numbering)
    if note:
        log.warning("%s: %s", item.video_id, note)
        row.setdefault("notes", []).append(note)
    return face_source


def _fetch_and_probe(stack: contextlib.ExitStack, item, cfg: ExtractConfig, clock: StageClock,
                     rows: dict) -> tuple | None:
    """(local item, source identity, probe), or None with the item marked failed."""
    try:
        with clock("fetch"):  # a URL source is downloaded to scratch, and deleted when the task ends
            local, source = stack.enter_context(local_source(item, cfg.storage_options, cfg.scratch_dir))
        with clock("probe"):
            probe = probe_item(local)
        if probe.n_frames < 1:
            raise DataError(f"{item.video_id}: no frames decoded")
        identity = _identity(local, source)
        rows[item.video_id]["source"] = identity       # recorded with a failure by the driver
        return local, identity, probe
    except Exception as exc:
        rows[item.video_id].update(status="failed", error=_describe(item, exc))
        return None


def write_new_shard(cache, task, cfg: ExtractConfig, encoders: Encoders, clock: StageClock, rows: dict) -> None:
    from emokd.cache import ItemSpec

    with contextlib.ExitStack() as stack:
        ready = [(item, found) for item in task.items
                 if (found := _fetch_and_probe(stack, item, cfg, clock, rows)) is not None]
        if not ready:
            return
        specs = []
        for item, (local, source, probe) in ready:
            face_source = _item_face_source(local, cfg, rows[item.video_id])
            attrs = {"fps": probe.fps, "pts_source": probe.pts_source, "face_source": face_source,
                     "split": item.split, **media_attrs(probe.info),
                     **({"crop_numbering": cfg.crop_numbering} if face_source == "crops" and item.crop_dir else {})}
            specs.append(ItemSpec(item.video_id, probe.n_frames, source, item.dataset, attrs))
        with clock("write"):
            writer = cache.begin_shard(task.key, specs, sets=task.sets)
        written = {}
        for (item, (local, _, probe)), spec in zip(ready, specs):
            part = writer.item(item.video_id)
            try:
                with clock("write"):
                    part.write("pts", 0, probe.pts)
                media = _extract_item(part, local, probe, cfg, encoders, spec.attrs["face_source"], clock,
                                      ("audio", "face"), rows[item.video_id]["notes"])
                part.write_labels(item_labels(item, probe.n_frames))  # fitted to the item's frames
                written[item.video_id] = {"n_frames": probe.n_frames,
                                          "media": {**media, "pts_repairs": spec.attrs.get("pts_repairs", 0)}}
            except Exception as exc:  # one bad item must not stop its shard; the machine's error does
                if environment_error(exc) is not None:
                    raise
                error = _describe(item, exc)
                part.fail(error)
                rows[item.video_id].update(status="failed", error=error)   # the driver logs it
        with clock("write"):
            if written:
                writer.commit()       # only now are its items done
            elif writer.still_mine():
                cache.delete_shard(task.key)
        for item_id, done in written.items():
            rows[item_id].update(status="done", **done)


def write_added_sets(cache, task, cfg: ExtractConfig, encoders: Encoders, clock: StageClock, rows: dict) -> None:
    state = cache.shard_state(task.key)
    kinds = tuple(sorted({cache.feature_set(name).kind for name in task.sets}))
    with clock("write"):
        writer = cache.begin_sets(task.key, task.sets)
    written = {}
    for i, (item_id, item) in enumerate(zip(task.ids, task.items)):
        part = writer.item(item_id)
        if state.table.status[i] != "complete":
            part.fail("failed when the shard was written")
            continue
        if item is None:
            part.fail("not in the dataset index of this run")
            rows[item_id] = {"status": "absent", "n_frames": 0, "error": f"feature set(s) {task.sets} missing"}
            continue
        with contextlib.ExitStack() as stack:
            found = _fetch_and_probe(stack, item, cfg, clock, rows)
            try:
                if found is None:
                    raise DataError(rows[item_id]["error"])
                local, _, probe = found
                if probe.n_frames != part.n_frames:
                    raise DataError(f"{item_id}: has {probe.n_frames} frames now, the cache holds "
                                    f"{part.n_frames}; the source changed since the shard was written")
                face_source = state.table.attrs[i].get("face_source") or _item_face_source(local, cfg, rows[item_id])
                media = _extract_item(part, local, probe, cfg, encoders, face_source, clock, kinds,
                                      rows[item_id].setdefault("notes", []))
                written[item_id] = {"n_frames": probe.n_frames, "media": media}
            except Exception as exc:
                if environment_error(exc) is not None:
                    raise
                error = _describe(item, exc)
                part.fail(error)
                rows[item_id].update(status="failed", error=error)
    with clock("write"):
        writer.commit()       # only now are its items done
    for item_id, done in written.items():
        rows[item_id].update(status="done", **done)


def _extract_item(part, item, probe: ItemProbe, cfg: ExtractConfig, encoders: Encoders, face_source: str,
                  clock, kinds: tuple[str, ...], notes: list[str]) -> dict:
    """The audio and/or face stage of one item into its rows of the shard; records the audio track
    and the decoding in the item's attrs (a new shard); returns what the driver's summary reports."""
    attrs = {}
    if "audio" in kinds:
        attrs["audio"] = _audio_stage(item, probe, cfg, encoders, part, clock)
    if "face" not in kinds:
        part.set_attrs(attrs)
        return {}
    n_faces, report = _face_stage(item, probe, cfg, encoders, part, face_source, clock)
    if n_faces == 0 and face_source != "none":  # "none" said why already
        notes.append(f"no face in any of its {probe.n_frames} frames ({face_source}); face_ok is False throughout")
        log.warning("%s: %s", item.video_id, notes[-1])
    if report.check_seconds:  # part of faces_in, shown apart (benchmarks/extract.py)
        clock.seconds["decord_check"] = clock.seconds.get("decord_check", 0.0) + report.check_seconds
    attrs["decoding"] = report.record() if report.decoder else None
    part.set_attrs(attrs)
    return {"decoder": report.decoder, "pyav_reason": report.reason}
