"""Where node results live: the Store interface, its local tier and remote tiers for teams."""

from synthc.cache.layered import LayeredStore, open_store
from synthc.cache.remote import Remote
from synthc.cache.remotes import open_remote
from synthc.cache.store import LocalStore, default_cache_dir
from synthc.core.records import Record, Store

__all__ = [
    "LayeredStore",
    "LocalStore",
    "Record",
    "Remote",
    "Store",
    "default_cache_dir",
    "open_remote",
    "open_store",
]
