"""Executors for the harness's own tool cases, written the synthc way.

The runner copies this file beside each case's config, where synthc finds
``executor: parity_tools.<name>``; for oumi, ``oumi_adapters`` registers the same
functions under the same names and converts what they return. Each gets keyword
``arguments`` plus ``state`` (stateful simulated env) or ``context`` (database env).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from synthc import ToolResult


def shout(arguments: dict[str, Any]) -> dict[str, Any]:
    """Stateless: the text upper-cased."""
    return {"text": str(arguments["text"]).upper()}


def counter_get(arguments: dict[str, Any], state: dict[str, Any]) -> ToolResult:
    name = arguments["name"]
    return ToolResult({"name": name, "value": state["counters"].get(name, 0)})


def counter_add(arguments: dict[str, Any], state: dict[str, Any]) -> ToolResult:
    name, amount = arguments["name"], int(arguments["amount"])
    state["counters"][name] = state["counters"].get(name, 0) + amount
    return ToolResult({"name": name, "value": state["counters"][name]}, state)


def item_list(arguments: dict[str, Any], context: sqlite3.Connection) -> dict[str, Any]:
    rows = context.execute("SELECT sku, qty FROM items ORDER BY sku").fetchall()
    return {"items": [{"sku": sku, "qty": qty} for sku, qty in rows]}


def item_get(arguments: dict[str, Any], context: sqlite3.Connection) -> dict[str, Any]:
    row = context.execute("SELECT sku, qty FROM items WHERE sku = ?", (arguments["sku"],))
    found = row.fetchone()
    if found is None:
        return {"error": "not_found", "sku": arguments["sku"]}
    return {"sku": found[0], "qty": found[1]}


def item_restock(arguments: dict[str, Any], context: sqlite3.Connection) -> dict[str, Any]:
    context.execute(
        "UPDATE items SET qty = qty + ? WHERE sku = ?", (arguments["qty"], arguments["sku"])
    )
    return item_get({"sku": arguments["sku"]}, context)
