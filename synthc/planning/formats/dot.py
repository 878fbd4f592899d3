"""Draw an explanation for Graphviz: explain's JSON in; a ``digraph`` in the DOT language out.

Rules are boxes labelled with their id, kind and node counts, filled by what
the build will do (failed, run, blocked, cached; grey for rules that make no
request); inputs that are not rules are ellipses; edges run dependency → rule.
With ``nodes=True`` the listed nodes follow as small boxes, one cluster per
rule, joined to the nodes of the same sample they depend on.

Graph ids are generated (``r0``, ``i0``, ``n0``), so user text only ever
appears in HTML-like labels, escaped by :func:`label_text`: markup characters
and quotes become entities, newlines ``<BR/>``, other control characters a
visible ``\\xNN``, and everything outside ASCII a numeric character
reference — the output is plain ASCII whatever the config holds.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any

from synthc.planning.formats.layout import COLOURS, STATUSES, inputs, rule_state

FONT = "Helvetica"
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")


def to_dot(data: dict[str, Any], nodes: bool = False) -> str:
    """The rule graph of ``data`` (explain's JSON) as DOT; with ``nodes``, its listed nodes too."""
    ids = _graph_ids(data)
    lines = [
        "digraph explain {",
        *_indent(_header(data)),
        *_indent(_rule_lines(data, ids)),
    ]
    if nodes:
        lines += _indent(_node_lines(data, ids))
    lines.append("}")
    return "\n".join(lines) + "\n"


def label_text(text: object) -> str:
    """``text`` made safe for an HTML-like DOT label, in ASCII."""
    escaped = html.escape(str(text), quote=True).replace("\r\n", "\n")
    escaped = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", escaped)
    escaped = escaped.replace("\n", "<BR/>")
    return escaped.encode("ascii", "xmlcharrefreplace").decode("ascii")


def _indent(lines: Iterator[str] | list[str]) -> list[str]:
    return ["  " + line for line in lines]


def _graph_ids(data: dict[str, Any]) -> dict[str, str]:
    """Rule and input names → DOT ids; nodes get ``n<i>`` by position."""
    ids = {rule["id"]: f"r{i}" for i, rule in enumerate(data["rules"])}
    ids.update((name, f"i{i}") for i, name in enumerate(inputs(data)))
    return ids


def _header(data: dict[str, Any]) -> Iterator[str]:
    model, totals = data["model"], data["totals"]
    title = f"{model['engine']} {model['name']}, {data['num_samples']} samples"
    summary = ", ".join(f"{totals[s]} {s}" for s in STATUSES)
    yield (
        f'graph [rankdir=LR, fontname="{FONT}", fontsize=12, labelloc=t, '
        f"label=<<B>{label_text(title)}</B><BR/>{label_text(summary)}>];"
    )
    yield f'node [fontname="{FONT}", fontsize=11, style=filled, penwidth=1.4];'
    yield 'edge [color="#6b6b6b", arrowsize=0.7];'


def _rule_lines(data: dict[str, Any], ids: dict[str, str]) -> Iterator[str]:
    for name in inputs(data):
        fill, stroke = COLOURS["input"]
        yield (
            f'{ids[name]} [shape=ellipse, fillcolor="{fill}", color="{stroke}", '
            f"label=<{label_text(name)}>];"
        )
    for rule in data["rules"]:
        fill, stroke = COLOURS[rule_state(rule)]
        yield (
            f'{ids[rule["id"]]} [shape=box, style="rounded,filled", fillcolor="{fill}", '
            f'color="{stroke}", label=<{_rule_label(rule)}>];'
        )
    for rule in data["rules"]:
        for dep in rule["deps"]:
            yield f"{ids[dep]} -> {ids[rule['id']]};"


def _rule_label(rule: dict[str, Any]) -> str:
    parts = [
        f"<B>{label_text(rule['id'])}</B>",
        f'<FONT POINT-SIZE="9">{label_text(rule["kind"])}</FONT>',
    ]
    counts = rule.get("counts")
    if counts is not None:
        parts.append(label_text(" · ".join(f"{s} {counts[s]}" for s in STATUSES)))
        if rule.get("failed_last_time"):
            parts.append(label_text(f"{rule['failed_last_time']} failed last time"))
    return "<BR/>".join(parts)


def _node_lines(data: dict[str, Any], ids: dict[str, str]) -> Iterator[str]:
    listed = data["nodes"]
    node_ids = {node["id"]: f"n{i}" for i, node in enumerate(listed)}
    omitted = data["nodes_omitted"]
    yield f"// {len(listed)} nodes listed, {omitted} omitted (explain --all lists every node)"
    for i, rule in enumerate(data["rules"]):
        members = [n for n in listed if n["rule"] == rule["id"]]
        if members:
            yield from _cluster(i, rule, members, node_ids)
    for node in listed:
        for upstream in _upstream_nodes(data, node):
            if upstream in node_ids:
                yield f"{node_ids[upstream]} -> {node_ids[node['id']]};"


def _cluster(
    index: int, rule: dict[str, Any], members: list[dict[str, Any]], node_ids: dict[str, str]
) -> Iterator[str]:
    counts = rule.get("counts") or {}
    pending = sum(counts.get(s, 0) for s in ("run", "blocked", "failed"))
    hidden = max(pending - len(members), 0)
    caption = f"{rule['id']}: {len(members)} nodes shown" + (
        f", {hidden} omitted" if hidden else ""
    )
    yield f"subgraph cluster_{index} {{"
    yield f'  label=<{label_text(caption)}>; style="rounded,dashed"; color="#9a9a9a";'
    for node in members:
        fill, stroke = COLOURS.get(node["status"], COLOURS["derived"])
        text = f"{node['id']}\n{node['status']}"
        checks = ", ".join(r["check"] for r in node["reasons"])
        label = label_text(text) + (
            f'<BR/><FONT POINT-SIZE="8">{label_text(checks)}</FONT>' if checks else ""
        )
        yield (
            f"  {node_ids[node['id']]} [shape=box, fontsize=9, height=0.3, "
            f'fillcolor="{fill}", color="{stroke}", label=<{label}>];'
        )
    yield "}"


def _upstream_nodes(data: dict[str, Any], node: dict[str, Any]) -> list[str]:
    """Ids of the request nodes of the same sample that ``node`` reads, through derived rules."""
    rules = {r["id"]: r for r in data["rules"]}
    found: list[str] = []
    stack = list(rules[node["rule"]]["deps"]) if node["rule"] in rules else []
    seen: set[str] = set()
    while stack:
        dep = stack.pop()
        if dep in seen or dep not in rules:
            continue
        seen.add(dep)
        if "counts" in rules[dep]:
            found.append(f"{dep}[{node['sample']}]")
        else:
            stack.extend(rules[dep]["deps"])
    return found
