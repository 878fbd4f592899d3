"""Where node results live: the Store interface and its tiers."""

from synthc.cache.store import LocalStore, Record, Store, default_cache_dir

__all__ = ["LocalStore", "Record", "Store", "default_cache_dir"]
