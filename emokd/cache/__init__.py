"""The Zarr feature cache: shards of items, feature sets with their own fingerprints, labels, soft
labels, readers, verify/info, migration from older versions. No torch.

Layout and attributes: docs/cache_format.md. Entry point: `FeatureCache.create` / `FeatureCache.open`.
"""

from emokd.cache.keys import decode_key, encode_key
from emokd.cache.labels import ItemLabels, fit_labels
from emokd.cache.reading import ItemSpec
from emokd.cache.schema import ArraySpec, shard_arrays
from emokd.cache.sets import FeatureSet, make_set, sets_from_records
from emokd.cache.shard import ItemTable, ItemWriter, ShardWriter
from emokd.cache.store import FeatureCache

__all__ = ["ArraySpec", "FeatureCache", "FeatureSet", "ItemLabels", "ItemSpec", "ItemTable", "ItemWriter",
           "ShardWriter", "decode_key", "encode_key", "fit_labels", "make_set", "sets_from_records",
           "shard_arrays"]
