"""Draw an explanation for a terminal: explain's JSON in; a rule tree, totals and reasons out."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.text import Text
from rich.tree import Tree

from synthc.planning.formats.text import summary_text

STATUS_STYLE = {"cached": "cyan", "run": "green", "blocked": "yellow", "failed": "red"}


def print_explanation(data: dict[str, Any], console: Console, show_nodes: bool = True) -> None:
    """The rule graph with per-rule counts, the totals and estimate, then nodes and reasons."""
    console.print(_rule_tree(data))
    console.print(summary_text(data))
    if show_nodes:
        _print_nodes(data, console)


def _rule_tree(data: dict[str, Any]) -> Tree:
    model = data["model"]
    tree = Tree(Text.assemble(("Rules", "bold"), f"  ({model['engine']} {model['name']})"))
    for rule in data["rules"]:
        label = Text.assemble((rule["id"], "bold"), f"  {rule['kind']}")
        if rule["deps"]:
            label.append(f" ← {', '.join(rule['deps'])}", style="dim")
        counts = rule.get("counts")
        if counts:
            for status in ("cached", "run", "blocked", "failed"):
                style = STATUS_STYLE[status] if counts[status] else "dim"
                label.append(f"  {status} {counts[status]}", style=style)
            if rule.get("failed_last_time"):
                label.append(f"  ({rule['failed_last_time']} failed last time)", style="red")
        tree.add(label)
    return tree


def _print_nodes(data: dict[str, Any], console: Console) -> None:
    """Nodes that share a rule, a status and their reasons print as one group."""
    nodes = data["nodes"]
    if not nodes:
        return
    console.print(Text("\nWhy these nodes would run:", style="bold"))
    groups: dict[tuple[str, str, str], list[int]] = {}
    for node in nodes:
        reasons = json.dumps(node["reasons"], sort_keys=True)
        groups.setdefault((node["rule"], node["status"], reasons), []).append(node["sample"])
    for (rule, status, reasons), samples in groups.items():
        count = f" ({len(samples)} nodes)" if len(samples) > 1 else ""
        head = Text.assemble(
            (f"  {rule}[{_ranges(samples)}]", "bold"), (f"  {status}", STATUS_STYLE[status]), count
        )
        console.print(head)
        for reason in json.loads(reasons):
            detail = reason["detail"].replace("\n", "\n" + " " * 8)
            console.print(Text(f"      {reason['check']}: {detail}"))
    if data["nodes_omitted"]:
        console.print(f"  … {data['nodes_omitted']} more (use --all to list every node)")


def _ranges(samples: list[int]) -> str:
    """``[0, 1, 2, 5, 7, 8]`` as ``0-2,5,7-8``."""
    parts: list[str] = []
    ordered = sorted(samples)
    start = prev = ordered[0]
    for n in [*ordered[1:], None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if n is not None:
            start = prev = n
    return ",".join(parts)


def print_why(info: dict[str, Any], console: Console) -> None:
    """One node in full, as ``explain --why`` shows it."""
    style = STATUS_STYLE.get(info["status"], "")
    console.print(Text.assemble((info["id"], "bold"), ("  " + info["status"], style)))
    console.print(f"key: {info['key'] or '(unknown until its inputs are)'}")
    if info["draw_seed"] is not None:
        console.print(f"draw seed: {info['draw_seed']}")
    console.print(Text("inputs:", style="bold"))
    for name, value in info["inputs"].items():
        key = f"  key {value['key']}" if value["key"] else ""
        console.print(f"  {name} = {_short(value['value'])!r} ({value['status']}){key}")
    if info["messages"] is not None:
        console.print(Text("messages:", style="bold"))
        for message in info["messages"]:
            console.print(f"  [{message['role']}] {message['content']}", markup=False)
            for call in message.get("tool_calls", ()):
                console.print(f"    calls {_call(call)}", markup=False)
    for reason in info["reasons"]:
        console.print(f"{reason['check']}: {reason['detail']}", markup=False)
    if info["output"] is not None:
        console.print(Text("cached output:", style="bold"))
        console.print(info["output"], markup=False)
        for call in info.get("tool_calls", ()):
            console.print(f"  calls {_call(call)}", markup=False)


def _call(call: dict[str, str]) -> str:
    return f"{call['name']}({call['arguments']})  [{call['id']}]"


def _short(value: Any, limit: int = 120) -> Any:
    if isinstance(value, str) and len(value) > limit:
        return value[:limit] + "…"
    return value


def render_explain(
    config: str,
    overrides: Sequence[str],
    *,
    cache_dir: str | None,
    fmt: str,
    node: str | None,
    show_all: bool,
    nodes: bool,
    prices: str | None,
    remote_cache: Sequence[str] = (),
    remote_cache_readonly: bool | None = None,
    batch: bool | None = None,
) -> str:
    """The explanation of ``config`` in ``fmt``, as text to print."""
    from synthc import pipeline

    urls = list(remote_cache) or None

    console = Console(record=True, width=120, force_terminal=None)
    if node is not None:
        info = pipeline.why(
            config,
            node,
            overrides,
            cache_dir=cache_dir,
            remote_cache=urls,
            remote_cache_readonly=remote_cache_readonly,
        )
        if fmt == "json":
            return json.dumps(info, indent=2, ensure_ascii=False)
        with console.capture() as captured:
            print_why(info, console)
        return captured.get()
    report = pipeline.explain(
        config,
        overrides,
        cache_dir=cache_dir,
        node_limit=None if show_all else 50,
        prices=load_prices(prices) if prices else None,
        remote_cache=urls,
        remote_cache_readonly=remote_cache_readonly,
        batch=batch,
    )
    data = report.to_json()
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False)
    if fmt == "dot":
        from synthc.planning.formats.dot import to_dot

        return to_dot(data, nodes=nodes)
    if fmt == "html":
        from synthc.planning.formats.html import to_html

        return to_html(data)
    with console.capture() as captured:
        print_explanation(data, console)
    return captured.get()


def load_prices(path: str) -> dict[str, tuple[float, float]]:
    """A price table: model → {input, output} USD per million tokens, merged over the defaults."""
    from synthc.core.errors import ConfigError, Span
    from synthc.planning.prices import PRICES

    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    table = dict(PRICES)
    try:
        for model, price in (raw or {}).items():
            table[str(model)] = (float(price["input"]), float(price["output"]))
    except (AttributeError, KeyError, TypeError, ValueError):
        raise ConfigError.at(
            "expected a mapping of model name → {input: USD, output: USD} per million tokens",
            Span(path, 0, 0),
        ) from None
    return table
