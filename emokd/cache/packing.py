"""Which items share a shard: the one packing rule of extraction and migration.

Stills and short clips (at most `pack_frames` frames) are packed many to a shard of at most
`shard_frames` frames, per dataset, in the order given; longer items, and items whose frame count
is not known, get a shard each. A packed shard's key is `<escaped dataset>~~<first 16 hex digits
of the sha1 of its item ids, one per line>`, so the same items always give the same key and a
rerun redoes an interrupted shard in place; a one-item shard's key is the item's escaped id. `~~`
never occurs in an escaped id, so the two kinds never collide.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from emokd.cache.keys import encode_key

SHARD_FRAMES = 4096
PACK_FRAMES = 1000


@dataclass(frozen=True)
class PackEntry:
    item_id: str
    dataset: str | None
    n_frames: int | None      # None: not known (a shard of its own)


def packed_key(dataset: str | None, ids: list[str]) -> str:
    digest = hashlib.sha1("\n".join(ids).encode("utf-8")).hexdigest()[:16]
    return f"{encode_key(dataset or 'items')}~~{digest}"


def pack(entries: list[PackEntry], shard_frames: int = SHARD_FRAMES,
         pack_frames: int = PACK_FRAMES) -> list[tuple[str, list[int]]]:
    """[(shard key, positions in `entries`)], long items alone, short ones packed per dataset."""
    shards: list[tuple[str, list[int]]] = []
    open_by_dataset: dict[str, tuple[list[int], int]] = {}

    def close(dataset: str) -> None:
        group, _ = open_by_dataset.pop(dataset)
        shards.append((packed_key(dataset, [entries[i].item_id for i in group]), group))

    for i, entry in enumerate(entries):
        n = entry.n_frames
        if n is None or n > pack_frames:
            shards.append((encode_key(entry.item_id), [i]))
            continue
        dataset = entry.dataset or ""
        group, rows = open_by_dataset.get(dataset, ([], 0))
        if group and rows + n > shard_frames:
            close(dataset)
            group, rows = [], 0
        open_by_dataset[dataset] = (group + [i], rows + n)
    for dataset in list(open_by_dataset):
        close(dataset)
    return shards
