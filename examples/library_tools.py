"""Executors for library_agent.yaml (``executor: library_tools.<function>``).

synthc imports this file from beside the config. A database executor gets the
call's ``arguments`` and ``context``, the conversation's own SQLite connection,
and returns the tool's output as JSON-ready data.
"""

from __future__ import annotations

import sqlite3
from typing import Any


def check_loan(arguments: dict[str, Any], context: sqlite3.Connection) -> dict[str, Any]:
    row = context.execute(
        "SELECT patron FROM loans WHERE book_id = ?", (arguments["book_id"],)
    ).fetchone()
    return {"book_id": arguments["book_id"], "on_loan": row is not None, "patron": row and row[0]}


def lend_book(arguments: dict[str, Any], context: sqlite3.Connection) -> dict[str, Any]:
    try:
        context.execute(
            "INSERT INTO loans (book_id, patron) VALUES (?, ?)",
            (arguments["book_id"], arguments["patron"]),
        )
    except sqlite3.IntegrityError:
        return {"error": "already_on_loan", "book_id": arguments["book_id"]}
    return {"status": "lent", "book_id": arguments["book_id"], "patron": arguments["patron"]}
