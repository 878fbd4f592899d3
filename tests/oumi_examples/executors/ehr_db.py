"""Executors for ehr_database_synth.yaml (``executor: ehr_db.<name>``), written for synthc.

oumi ships its own executors.py beside that config and registers these names
through OUMI_EXTRA_DEPS_FILE; synthc imports ``ehr_db.py`` from the config's
directory instead. Each gets the call's arguments and the conversation's own
SQLite connection.
"""

from __future__ import annotations

import sqlite3
from typing import Any


def list_patients(arguments: dict[str, Any], context: sqlite3.Connection) -> dict[str, Any]:
    rows = context.execute("SELECT id, name FROM patients ORDER BY id").fetchall()
    return {"patients": [{"id": pid, "name": name} for pid, name in rows]}


def lookup_patient(arguments: dict[str, Any], context: sqlite3.Connection) -> dict[str, Any]:
    row = context.execute(
        "SELECT id, name, meds FROM patients WHERE id = ?", (arguments["pat_id"],)
    ).fetchone()
    if row is None:
        return {"error": "not_found", "pat_id": arguments["pat_id"]}
    return {"id": row[0], "name": row[1], "meds": row[2]}


def update_meds(arguments: dict[str, Any], context: sqlite3.Connection) -> dict[str, Any]:
    cursor = context.execute(
        "UPDATE patients SET meds = ? WHERE id = ?", (arguments["medication"], arguments["pat_id"])
    )
    if cursor.rowcount == 0:
        return {"error": "not_found", "pat_id": arguments["pat_id"]}
    return {"status": "ok", "pat_id": arguments["pat_id"], "meds": arguments["medication"]}
