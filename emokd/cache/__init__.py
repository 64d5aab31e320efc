"""The Zarr feature cache: schema, fingerprint, per-video write/commit, readers, verify/info. No torch."""
