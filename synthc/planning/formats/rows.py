"""Draw a few rows of a dataset as a short HTML table, for a notebook's output cell.

Each row is one table, a field per line, so a long ``answer`` or a whole
``conversation`` is shown in full (wrapped) instead of cut to a column's width;
a conversation's messages are drawn one per line with their role. Every string
is escaped.
"""

from __future__ import annotations

import html
import json
from typing import Any, TypeGuard

STYLE = (
    "<style>.synthc-rows td{vertical-align:top;text-align:left;white-space:pre-wrap}"
    ".synthc-rows th{vertical-align:top;text-align:right;padding-right:1em}</style>"
)


def rows_html(summary: str, rows: list[dict[str, Any]], *, ok: bool = True) -> str:
    """``summary`` as a heading over ``rows``, each a table of its fields."""
    colour = "inherit" if ok else "#b00020"
    parts = [STYLE, f'<div class="synthc-rows"><p style="color:{colour}">{_e(summary)}</p>']
    for index, row in enumerate(rows):
        cells = "".join(
            f"<tr><th>{_e(name)}</th><td>{_value(v)}</td></tr>" for name, v in row.items()
        )
        parts.append(f"<details{' open' if index == 0 else ''}><summary>row {index}</summary>")
        parts.append(f"<table>{cells}</table></details>")
    parts.append("</div>")
    return "".join(parts)


def _value(value: Any) -> str:
    if is_conversation(value):
        lines = [
            f"<b>{_e(m.get('role', ''))}</b>: {_e(message_text(m))}" for m in value["messages"]
        ]
        return "<br>".join(lines)
    return _e(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))


def is_conversation(value: Any) -> TypeGuard[dict[str, Any]]:
    """Whether a row's value is a conversation: ``{"messages": [{...}, ...]}``."""
    return (
        isinstance(value, dict)
        and isinstance(value.get("messages"), list)
        and all(isinstance(m, dict) for m in value["messages"])
    )


def message_text(message: dict[str, Any]) -> str:
    """A message's text, its tool calls (as JSON) after it."""
    content = message.get("content")
    if message.get("tool_calls"):
        calls = json.dumps(message["tool_calls"], ensure_ascii=False)
        return f"{content or ''} {calls}".strip()
    return content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)


def _e(text: str) -> str:
    return html.escape(text, quote=True)
