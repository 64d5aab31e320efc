"""Which videos a run extracts, and why the others are skipped (docs/safety.md).

Every item of the index is one of:
- complete and intact: skipped. "Intact" is the cache's cheap check (`FeatureCache.video_defects`:
  arrays present with their shapes, no chunk file lost) and its source file unchanged
  (`emokd.cache.source_identity.source_change`: size, mtime, hash of its first and last MiB; an
  object's size and ETag);
- complete but defective, or complete from a source that changed since: redone (its group is
  removed first by `clear_for_redo`, which is emokd's own data);
- recorded as failed by an earlier run, from the same source file: skipped unless `retry_failed`;
- anything else (new, or left incomplete by a killed run): extracted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from emokd.cache.source_identity import source_change

log = logging.getLogger(__name__)


@dataclass
class Plan:
    todo: list                       # VideoItems to extract
    complete: list[str]              # complete and intact: skipped
    settings: dict                   # fingerprint settings
    encoders: list[dict]
    defective: dict[str, str] = field(default_factory=dict)      # id -> first defect; redone
    changed: dict[str, str] = field(default_factory=dict)        # id -> how its source changed; redone
    failed_earlier: dict[str, str] = field(default_factory=dict)  # id -> its recorded error; skipped


def plan_work(cache, items: list, settings: dict, encoders: list[dict], retry_failed: bool = False,
              storage_options: dict | None = None) -> Plan:
    """The plan for `items` against `cache` (None: nothing extracted yet). Reads only;
    `storage_options` reach source URLs."""

    def change(recorded: dict | None, item) -> str | None:
        return source_change(recorded, item.video_path, storage_options)

    plan = Plan([], [], settings, encoders)
    checks = cache.complete_video_checks({item.video_id for item in items}) if cache is not None else {}
    failures = cache.failure_log() if cache is not None else {}
    for item in items:
        vid = item.video_id
        if vid in checks:
            attrs, defects = checks[vid]
            changed = change(attrs.get("source"), item)
            if defects:
                plan.defective[vid] = defects[0]
            elif changed:
                plan.changed[vid] = changed
            else:
                plan.complete.append(vid)
                continue
        elif vid in failures and not retry_failed:
            record = failures[vid]
            changed = change(record.get("source"), item)
            if changed is None:
                plan.failed_earlier[vid] = record.get("message") or "failed"
                continue
            plan.changed[vid] = changed
        plan.todo.append(item)
    plan.complete.sort()
    return plan


def clear_for_redo(cache, plan: Plan) -> None:
    """Remove the groups of the defective and changed videos, so that their tasks redo them."""
    for vid, defect in plan.defective.items():
        log.warning("%s: complete but defective (%s); extracting it again", vid, defect)
        cache.delete_video(vid)
    for vid, change in plan.changed.items():
        log.warning("%s: its source changed since it was extracted (%s); extracting it again", vid, change)
        if cache.is_complete(vid):
            cache.delete_video(vid)
