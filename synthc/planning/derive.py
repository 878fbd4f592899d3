"""Compute values that need no model: postprocessing, transforms and output rows.

Each function follows oumi's behaviour (``attribute_synthesizer.py``,
``attribute_transformation.py``, ``synthesis_pipeline.py``) except where noted:
CHAT ``conversation_id`` comes from the sample's key instead of ``uuid4`` so a
rebuild is byte-identical, and passthrough columns keep the order they are listed in.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from synthc.compiler.graph import Graph, TransformRule
from synthc.compiler.spec import PostprocessingParams, TransformationType, user_regex
from synthc.compiler.template import SampledValue, render

_PATH_PART = re.compile(r"([^\[\].]+|\[\d+\])")


def postprocess(text: str, params: PostprocessingParams) -> str:
    """oumi's order: regex (whole first match), cut_prefix (after the first), cut_suffix
    (before the last), strip, then added prefix and suffix."""
    if params.regex:
        match = user_regex(params.regex).search(text)
        if match:
            text = match.group(0)
    if params.cut_prefix:
        at = text.find(params.cut_prefix)
        if at != -1:
            text = text[at + len(params.cut_prefix) :]
    if params.cut_suffix:
        at = text.rfind(params.cut_suffix)
        if at != -1:
            text = text[:at]
    if params.strip_whitespace:
        text = text.strip()
    if params.added_prefix:
        text = params.added_prefix + text
    if params.added_suffix:
        text = text + params.added_suffix
    return text


def transform(rule: TransformRule, values: dict[str, Any], sample_key: str) -> Any:
    """The value of a transformed attribute for one sample."""
    rendered = [(k, render(t, values)) for k, t in rule.templates]
    if rule.type is TransformationType.STRING:
        return rendered[0][1]
    if rule.type is TransformationType.LIST:
        return [text for _, text in rendered]
    if rule.type is TransformationType.DICT:
        return dict(rendered)
    cid = rule.conversation_id or f"{rule.id}-{uuid.UUID(hex=sample_key)}"
    return {
        "conversation_id": cid,
        "messages": [{"content": text, "role": role} for role, text in rendered],
        "metadata": {k: render(t, values) for k, t in rule.metadata},
    }


def build_row(graph: Graph, values: dict[str, Any]) -> dict[str, Any]:
    """One JSONL row with oumi's keys: sampled attributes are stored as value ids."""
    if graph.passthrough is not None:
        visible = {k: v for k, v in values.items() if k not in graph.hidden}
        return _passthrough(graph.passthrough, visible)
    # drawn and read values in the order the sample got them (a combination's own order)
    row = {k: _stored(v) for k, v in values.items() if k in graph.base_set}
    for name in graph.columns:
        if name in values and name not in graph.hidden:
            row[name] = _stored(values[name])
    return row


def gate_view(values: dict[str, Any]) -> dict[str, Any]:
    """Every value of a sample as a row would store it, hidden and left-out ones too:
    what quality gates judge (a row's own columns may leave some out)."""
    return {k: _stored(v) for k, v in values.items()}


def _stored(value: Any) -> Any:
    return value.id if isinstance(value, SampledValue) else value


def _passthrough(names: tuple[str, ...], values: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for name in names:
        if "[" in name and "]" in name:
            found, value = _walk(values, name)
            if found:
                row[name] = value
        elif name in values:
            row[name] = _stored(values[name])
    return row


def _walk(values: dict[str, Any], path: str) -> tuple[bool, Any]:
    """Follow ``src[0].field`` through lists and dicts; (False, None) if it leads nowhere."""
    node: Any = values
    for part in _PATH_PART.findall(path):
        if part.startswith("["):
            index = int(part[1:-1])
            if not isinstance(node, list) or not -len(node) <= index < len(node):
                return False, None
            node = node[index]
        else:
            if not isinstance(node, dict) or part not in node:
                return False, None
            node = node[part]
    return True, _stored(node)
