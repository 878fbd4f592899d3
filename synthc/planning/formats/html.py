"""Draw an explanation as one web page: explain's JSON in; a self-contained HTML document out.

The page holds the totals and the estimate, the rule graph as inline SVG
(:mod:`synthc.planning.formats.svg`), and a table of the listed nodes with filters by
status, reason check and rule (:mod:`synthc.planning.formats.assets`). It loads
nothing: style and script are inline and a Content-Security-Policy forbids
every fetch. All text is escaped; the data itself is embedded as JSON in
``<script type="application/json" id="explain-data">`` with ``<``, ``>`` and
``&`` written as ``\\uXXXX`` escapes, so no string in it can end the element.
"""

from __future__ import annotations

import html
import json
from typing import Any

from synthc.planning.formats.assets import CSS, JS
from synthc.planning.formats.layout import COLOURS, STATUSES
from synthc.planning.formats.svg import to_svg

CHECKS = (
    "new",
    "failed",
    "modified.model",
    "modified.params",
    "modified.template",
    "modified.sampling",
    "modified.upstream",
    "missing",
    "error",
)
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    "img-src data:; base-uri 'none'; form-action 'none'"
)


def to_html(data: dict[str, Any]) -> str:
    """The page for ``data`` (explain's JSON)."""
    model = data["model"]
    title = f"synthc explain: {model['engine']} {model['name']}"
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{_e(title)}</title>",
            f"<style>{CSS}</style></head><body>",
            _header(data),
            "<main>",
            _graph_section(data),
            _nodes_section(data),
            "</main>",
            f"<footer>explain JSON schema_version {_e(data['schema_version'])}; "
            "the data is embedded in #explain-data.</footer>",
            f'<script type="application/json" id="explain-data">{embed_json(data)}</script>',
            f"<script>{JS}</script>",
            "</body></html>",
        ]
    )


def embed_json(data: dict[str, Any]) -> str:
    """``data`` as JSON that is safe inside a ``<script>`` element and parses back unchanged."""
    text = json.dumps(data, ensure_ascii=False, sort_keys=False)
    for char in "<>&\u2028\u2029":
        text = text.replace(char, f"\\u{ord(char):04x}")
    return text


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _header(data: dict[str, Any]) -> str:
    model = data["model"]
    identity = "" if model["identity"] == model["name"] else f" ({model['identity']})"
    sub = f"{model['engine']} {model['name']}{identity} · {data['num_samples']} samples"
    return (
        "<header><h1>What <code>synthc build</code> would do</h1>"
        f'<div class="sub" id="model">{_e(sub)}</div>'
        f"{_totals(data['totals'])}{_estimate(data['estimate'])}</header>"
    )


def _card(label: str, value: object, element_id: str, cls: str = "") -> str:
    return (
        f'<div class="card" id="{element_id}"><div class="label">{_e(label)}</div>'
        f'<div class="value {cls}">{_e(value)}</div></div>'
    )


def _totals(totals: dict[str, int]) -> str:
    cards = [_card("nodes", totals["nodes"], "total-nodes")]
    cards += [_card(s, totals[s], f"total-{s}", f"s-{s}") for s in STATUSES]
    return f'<section class="cards" id="totals">{"".join(cards)}</section>'


def _estimate(estimate: dict[str, Any]) -> str:
    cost, cost_max = estimate.get("cost_usd", estimate["cost_usd_max"]), estimate["cost_usd_max"]
    expected, most = (
        estimate.get("output_tokens", estimate["output_tokens_max"]),
        estimate["output_tokens_max"],
    )
    known = expected < most  # some rules' outputs are known from their answered requests
    price = "unknown price" if cost_max is None else f"≤ ${cost_max:,.4f}"
    if cost is not None and known:
        price = f"~${cost:,.4f} ({price})"
    if estimate.get("batch"):
        price += " (batch price)"
    outputs = f"~{expected:,} (≤ {most:,})" if known else f"≤ {most:,}"
    cards = [
        _card("requests", f"{estimate['requests']:,}", "estimate-requests"),
        _card("input tokens", f"~{estimate['input_tokens']:,}", "estimate-input"),
        _card("output tokens", outputs, "estimate-output"),
        _card("cost (USD)", price, "estimate-cost"),
    ]
    return f'<section class="cards" id="estimate">{"".join(cards)}</section>'


def _graph_section(data: dict[str, Any]) -> str:
    legend = "".join(
        f'<span><i style="background:{fill};border-color:{stroke}"></i>{_e(_legend(state))}</span>'
        for state, (fill, stroke) in COLOURS.items()
    )
    return (
        '<section id="graph"><h2>Rules</h2><div class="panel">'
        f'{to_svg(data)}<div class="legend">{legend}</div></div></section>'
    )


def _legend(state: str) -> str:
    return {
        "cached": "all cached",
        "run": "some will run",
        "blocked": "waits on an upstream",
        "failed": "some fail",
        "derived": "derived, no requests",
        "input": "input",
    }[state]


def _nodes_section(data: dict[str, Any]) -> str:
    nodes = data["nodes"]
    rows = "".join(_row(node) for node in nodes)
    empty = (
        '<p class="note" id="nothing-to-run">Nothing to run: every node is cached.</p>'
        if not nodes and not data["nodes_omitted"]
        else ""
    )
    omitted = data["nodes_omitted"]
    more = (
        f'<p class="note" id="nodes-omitted">… {omitted:,} more not listed '
        "(<code>synthc explain --all</code> lists every node).</p>"
        if omitted
        else ""
    )
    return (
        '<section id="nodes"><h2>Nodes that would not come from the cache</h2>'
        f"{_filters(data)}"
        '<table id="nodes-table"><thead><tr><th>node</th><th>rule</th><th>status</th>'
        f"<th>key</th><th>reasons</th></tr></thead><tbody>{rows}</tbody></table>"
        '<p class="note" id="no-match" hidden>No listed node matches these filters.</p>'
        f"{empty}{more}</section>"
    )


def _filters(data: dict[str, Any]) -> str:
    seen = {r["check"] for n in data["nodes"] for r in n["reasons"]}
    checks = [*CHECKS, *sorted(seen - set(CHECKS))]
    rules = [r["id"] for r in data["rules"] if "counts" in r]
    return (
        '<div class="filters">'
        f"{_select('status', 'status', STATUSES)}"
        f"{_select('reason', 'reason', checks)}"
        f"{_select('rule', 'rule', rules)}"
        f'<span id="shown-count" data-shown="{len(data["nodes"])}">'
        f"{len(data['nodes'])} listed nodes</span></div>"
    )


def _select(name: str, label: str, values: tuple[str, ...] | list[str]) -> str:
    options = "".join(f'<option value="{_e(v)}">{_e(v)}</option>' for v in values)
    return (
        f'<label for="{name}-filter">{_e(label)}<select id="{name}-filter" name="{name}">'
        f'<option value="">all</option>{options}</select></label>'
    )


def _row(node: dict[str, Any]) -> str:
    checks = " ".join(r["check"] for r in node["reasons"])
    reasons = "".join(
        f'<div class="reason"><span class="check">{_e(r["check"])}</span>'
        f'<span class="detail">{_e(r["detail"])}</span></div>'
        for r in node["reasons"]
    )
    status = node["status"]
    key = node["key"] or ("unknown until its inputs are" if status == "blocked" else "none")
    return (
        f'<tr class="node-row" data-status="{_e(status)}" data-rule="{_e(node["rule"])}" '
        f'data-checks="{_e(checks)}"><td><code>{_e(node["id"])}</code></td>'
        f"<td>{_e(node['rule'])}</td>"
        f'<td><span class="status s-{_e(status)}">{_e(status)}</span></td>'
        f'<td class="key">{_e(key)}</td><td>{reasons}</td></tr>'
    )
