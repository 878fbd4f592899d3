"""Spread one build over many processes and machines: the same graph, one shared cache.

The driver compiles and plans once; :mod:`synthc.cluster.shards` cuts the samples
into contiguous ranges and runs synthc's own scheduler on each range (a shard),
writing every answer to the cache every shard shares; the driver then assembles
the JSONL and the manifest from that cache exactly as a local build writes them.
:mod:`synthc.cluster.on_ray` runs the shards as Ray tasks, with the endpoint's
budgets held by one Ray actor so that limits stay global.
"""
