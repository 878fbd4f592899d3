"""Executors for ehr_stateful_synth.yaml (``executor: ehr.<name>``), written for synthc.

Each takes the call's arguments and a copy of the conversation's state and
returns a ToolResult; write tools return the new state with it.
"""

from __future__ import annotations

from typing import Any

from synthc import ToolResult

State = dict[str, Any]


def _find(state: State, patient_id: str) -> dict[str, Any] | None:
    return next((p for p in state["patients"] if p["patient_id"] == patient_id), None)


def _not_found(patient_id: str) -> ToolResult:
    return ToolResult({"status": "error", "error": "not_found", "patient_id": patient_id})


def list_patients(arguments: dict[str, Any], state: State) -> ToolResult:
    keys = ("patient_id", "name", "dob", "status")
    return ToolResult({"patients": [{k: p[k] for k in keys} for p in state["patients"]]})


def get_patient(arguments: dict[str, Any], state: State) -> ToolResult:
    patient = _find(state, arguments["patient_id"])
    if patient is None:
        return _not_found(arguments["patient_id"])
    return ToolResult({"status": "ok", "patient": patient})


def record_vitals(arguments: dict[str, Any], state: State) -> ToolResult:
    patient = _find(state, arguments["patient_id"])
    if patient is None:
        return _not_found(arguments["patient_id"])
    vitals = {k: arguments[k] for k in ("timestamp", "bp", "hr", "temp_f")}
    patient["vitals_history"].append(vitals)
    output = {"status": "ok", "patient_id": patient["patient_id"], "vitals_recorded": vitals}
    return ToolResult(output, state)


def add_diagnosis(arguments: dict[str, Any], state: State) -> ToolResult:
    patient = _find(state, arguments["patient_id"])
    if patient is None:
        return _not_found(arguments["patient_id"])
    if any(d["code"] == arguments["code"] for d in patient["diagnoses"]):
        error = {"status": "error", "error": "duplicate_diagnosis"}
        return ToolResult({**error, "patient_id": patient["patient_id"], "code": arguments["code"]})
    diagnosis = {k: arguments[k] for k in ("code", "description", "date")}
    patient["diagnoses"].append(diagnosis)
    output = {"status": "ok", "patient_id": patient["patient_id"], "diagnosis_added": diagnosis}
    return ToolResult(output, state)


def prescribe_medication(arguments: dict[str, Any], state: State) -> ToolResult:
    patient = _find(state, arguments["patient_id"])
    if patient is None:
        return _not_found(arguments["patient_id"])
    name = arguments["name"]
    base = {"status": "error", "patient_id": patient["patient_id"], "medication": name}
    if any(m["name"] == name for m in patient["medications"]):
        return ToolResult({**base, "error": "already_prescribed"})
    if name.lower() in (a.lower() for a in patient["allergies"]):
        return ToolResult({**base, "error": "allergy_conflict"})
    medication = {"name": name, "dose": arguments["dose"]}
    patient["medications"].append(medication)
    output = {"status": "ok", "patient_id": patient["patient_id"], "medication_added": medication}
    return ToolResult(output, state)


def update_allergies(arguments: dict[str, Any], state: State) -> ToolResult:
    patient = _find(state, arguments["patient_id"])
    if patient is None:
        return _not_found(arguments["patient_id"])
    patient["allergies"] = list(arguments["allergies"])
    output = {
        "status": "ok",
        "patient_id": patient["patient_id"],
        "allergies": patient["allergies"],
    }
    return ToolResult(output, state)
