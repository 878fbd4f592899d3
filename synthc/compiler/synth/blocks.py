"""Write a config mapping as .synth statements, one function per statement kind.

emit_statements(data) -> list[Line]   each Line is one statement line (it may span several
                                      text lines, for a triple-quoted string or a block)

A part the sugar cannot say raises _Raw; its top-level key is then written as a plain
``key {...}`` setting, which says anything the mapping can hold.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from synthc.compiler.engines import Engine
from synthc.compiler.source import PathKey
from synthc.compiler.synth.source import ENGINE_SPELLINGS, MODEL_GROUPS
from synthc.compiler.synth.text import encode
from synthc.core.errors import ConfigError

WIDTH = 100
SP = ("strategy_params",)
IC = ("inference_config",)
RESERVED = frozenset(
    [
        "samples",
        "model",
        "examples",
        "data",
        "documents",
        "sample",
        "combine",
        "generate",
        "postprocess",
        "system",
        "user",
        "assistant",
        "tool",
        "string",
        "list",
        "dict",
        "chat",
        "multiturn",
        "environment",
        "passthrough",
        "quality",
        "judge",
        "validate",
        "filter",
        "dedup",
        "near",
        "shingle",
        "true",
        "false",
        "null",
    ]
)
ROLES = {"system", "user", "assistant", "tool"}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass(frozen=True)
class Line:
    text: str
    paths: tuple[PathKey, ...] = ()


class _Raw(Exception):
    """This part does not fit the sugar; write its top-level key as a plain setting."""


def _need(ok: bool) -> None:
    if not ok:
        raise _Raw


# --- values ---------------------------------------------------------------------------


def is_name(text: Any) -> bool:
    return isinstance(text, str) and bool(_NAME.match(text)) and text not in RESERVED


def key(text: str) -> str:
    return text if is_name(text) else json.dumps(text, ensure_ascii=False)


def string(value: Any, indent: str) -> str:
    _need(isinstance(value, str))
    return encode(value, indent)


def value(data: Any, indent: str) -> str:
    """Any plain value as a literal; containers inline when they fit on one line."""
    if data is None or isinstance(data, bool):
        return {None: "null", True: "true", False: "false"}[data]
    if isinstance(data, (int, float)):
        return repr(data)
    if isinstance(data, str):
        return data if is_name(data) else encode(data, indent)
    if isinstance(data, list):
        items = [value(v, indent + "  ") for v in data]
        return _container("[", "]", items, indent, ", ")
    if isinstance(data, dict):
        pairs = [f"{key(str(k))}: {value(v, indent + '  ')}" for k, v in data.items()]
        return _container("{ " if pairs else "{", " }" if pairs else "}", pairs, indent, ", ")
    raise ConfigError.at(f"cannot write a value of type {type(data).__name__} in .synth")


def _container(open_: str, close: str, items: list[str], indent: str, sep: str) -> str:
    inline = open_ + sep.join(items) + close
    if "\n" not in inline and len(indent) + len(inline) <= WIDTH - 20:
        return inline
    body = "".join(f"\n{indent}  {item}" for item in items)
    return f"{open_.strip()}{body}\n{indent}{close.strip()}"


def settings(
    items: dict[str, Any], indent: str, path: PathKey = (), *, words: bool = False
) -> list[tuple[str, str]]:
    """``name value`` lines; ``words``: in a block whose settings are all the grammar
    expects there, so a statement's keyword (``model``) is a name like any other."""
    out = []
    for name, data in items.items():
        _need(is_name(name) or (words and bool(_NAME.match(name))))
        out.append((f"{name} {value(data, indent)}", name))
    return out


def block(head: str, body: list[str], indent: str = "", sep: str = "  ") -> str:
    """``head { a  b }`` on one line when it fits, else one item per line."""
    if not body:
        return f"{head} {{}}" if head else "{}"
    inline = f"{head} {{ {sep.join(body)} }}"
    if "\n" not in inline and len(indent) + len(inline) <= WIDTH:
        return inline
    lines = "".join(f"\n{indent}  {item}" for item in body)
    return f"{head} {{{lines}\n{indent}}}"


def message(role: Any, content: Any, indent: str) -> str:
    _need(isinstance(role, str) and role.lower() in ROLES)
    return f"{str(role).lower()} {string(content, indent)}"


def messages(items: Any, indent: str) -> list[str]:
    _need(isinstance(items, list))
    out = []
    for item in items:
        _need(isinstance(item, dict) and set(item) == {"role", "content"})
        out.append(message(item["role"], item["content"], indent + "  "))
    return out


# --- statements -----------------------------------------------------------------------


def samples(data: dict[str, Any]) -> list[Line]:
    count, out = data.get("num_samples"), data.get("output_path")
    if not isinstance(count, int) or isinstance(count, bool):
        return []
    arrow = f" -> {string(out, '')}" if isinstance(out, str) else ""
    return [Line(f"samples {count}{arrow}", (("num_samples",), ("output_path",)))]


def model(ic: Any) -> list[Line]:
    _need(isinstance(ic, dict) and set(ic) <= {"engine", "model", "generation", "remote_params"})
    head = "model"
    engine = ic.get("engine")
    if engine is not None:
        _need(isinstance(engine, str) and engine.lower() in ENGINE_SPELLINGS)
        head += " " + Engine(ENGINE_SPELLINGS[engine.lower()]).value.lower()
    params = dict(ic.get("model") or {})
    _need(isinstance(ic.get("model") or {}, dict))
    if "model_name" in params:
        head += " " + string(params.pop("model_name"), "")
    body: list[str] = []
    for group, fields in MODEL_GROUPS:
        part = params if group == "model" else ic.get(group) or {}
        _need(isinstance(part, dict) and set(part) <= fields)
        body += [text for text, _ in settings(part, "  ")]
    if head == "model" and not body:
        return []
    return [Line(block(head, body), (IC, (*IC, "engine"), (*IC, "model")))]


def sample(attr: Any, path: PathKey) -> list[Line]:
    _need(isinstance(attr, dict) and set(attr) <= {"id", "name", "description", "possible_values"})
    _need("description" not in attr or "name" in attr)
    head = f"sample {key(_str(attr.get('id')))}"
    for field in ("name", "description"):
        if field in attr:
            head += " " + string(attr[field], "")
    options = attr.get("possible_values")
    _need(isinstance(options, list))
    lines = [Line(head + " {", (path, (*path, "id")))]
    for i, option in enumerate(options):
        lines.append(Line("  " + _option(option), ((*path, "possible_values", i),)))
    return [*lines, Line("}")]


def _option(option: Any) -> str:
    fits = isinstance(option, dict) and set(option) <= {"id", "name", "description", "sample_rate"}
    if (
        not fits
        or not is_name(option.get("id"))
        or ("description" in option and "name" not in option)
    ):
        return value(option, "  ")
    text = str(option["id"])
    for field in ("name", "description"):
        if field in option:
            text += " " + string(option[field], "  ")
    rate = option.get("sample_rate", "")
    if "sample_rate" in option:
        _need(isinstance(rate, (int, float)) and not isinstance(rate, bool))
        text += f" @ {rate!r}"
    return text


def combine(item: Any, path: PathKey) -> list[Line]:
    _need(isinstance(item, dict) and set(item) <= {"combination", "sample_rate"})
    _need(isinstance(item.get("combination"), dict))
    text = f"combine {value(item['combination'], '')}"
    if "sample_rate" in item:
        rate = item["sample_rate"]
        _need(isinstance(rate, (int, float)) and not isinstance(rate, bool))
        text += f" @ {rate!r}"
    return [Line(text, (path,))]


def generate(attr: Any, path: PathKey) -> list[Line]:
    _need(
        isinstance(attr, dict)
        and set(attr) <= {"id", "instruction_messages", "postprocessing_params"}
    )
    body = messages(attr.get("instruction_messages"), "")
    post = attr.get("postprocessing_params")
    if post is not None:
        _need(isinstance(post, dict) and "id" in post)
        rest = {k: v for k, v in post.items() if k != "id"}
        head = f"postprocess {key(_str(post['id']))}"
        body.append(block(head, [t for t, _ in settings(rest, "    ")], "  ") if rest else head)
    head = f"generate {key(_str(attr.get('id')))}"
    lines = [Line(f"{head} {{", (path, (*path, "id")))]
    for i, text in enumerate(body):
        lines.append(Line("  " + text, ((*path, "instruction_messages", i),)))
    return [*lines, Line("}")]


def transform(attr: Any, path: PathKey) -> list[Line]:
    _need(isinstance(attr, dict) and set(attr) == {"id", "transformation_strategy"})
    strategy = attr["transformation_strategy"]
    _need(isinstance(strategy, dict) and isinstance(strategy.get("type"), str))
    kind = str(strategy["type"]).lower()
    field = f"{kind}_transform"
    _need(kind in ("string", "list", "dict", "chat") and field in strategy)
    _need(all(v is None for k, v in strategy.items() if k not in ("type", field)))
    body, ident = strategy[field], key(_str(attr["id"]))
    if kind == "chat":
        _need(isinstance(body, dict) and "messages" in body)
        rest = {k: v for k, v in body.items() if k != "messages"}
        _need(not (set(rest) & ROLES))
        items = messages(body["messages"], "") + [t for t, _ in settings(rest, "  ")]
        return [Line(block(f"chat {ident}", items), (path,))]
    _need(isinstance(body, {"string": str, "list": list, "dict": dict}[kind]))
    return [Line(f"{kind} {ident} {value(body, '')}", (path,))]


def multiturn(attr: Any, path: PathKey) -> list[Line]:
    _need(isinstance(attr, dict))
    rest = {k: v for k, v in attr.items() if k not in ("id", "role_instruction_messages")}
    head = f"multiturn {key(_str(attr.get('id')))}"
    low, high = rest.get("min_turns"), rest.get("max_turns")
    if all(isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in (low, high)):
        head += f" {low}..{high}"
        del rest["min_turns"], rest["max_turns"]
    roles = attr.get("role_instruction_messages", {})
    _need(isinstance(roles, dict) and not (set(rest) & ROLES))
    body = [message(role, text, "  ") for role, text in roles.items()]
    lines = [Line(f"{head} {{", (path, (*path, "id")))]
    for i, text in enumerate(body):
        lines.append(Line("  " + text, ((*path, "role_instruction_messages", list(roles)[i]),)))
    for text, name in settings(rest, "  "):
        lines.append(Line("  " + text, ((*path, name),)))
    return [*lines, Line("}")]


def environment(env: Any, path: PathKey) -> list[Line]:
    _need(isinstance(env, dict) and "tool" not in env)
    rest = {k: v for k, v in env.items() if k not in ("id", "env_type", "tools")}
    head = f"environment {key(_str(env.get('id')))}"
    if "env_type" in env:
        head += f" {key(_str(env['env_type']))}"
    lines = [Line(f"{head} {{", (path, (*path, "id")))]
    for text, name in settings(rest, "  "):
        lines.append(Line("  " + text, ((*path, name),)))
    tools = env.get("tools", [])
    _need(isinstance(tools, list) and (bool(tools) or "tools" not in env))
    for i, tool in enumerate(tools):
        _need(isinstance(tool, dict))
        rest = {k: v for k, v in tool.items() if k != "id"}
        body = [t for t, _ in settings(rest, "    ")]
        head = f"tool {key(_str(tool.get('id')))}"
        lines.append(
            Line("  " + (block(head, body, "  ") if body else head), ((*path, "tools", i),))
        )
    return [*lines, Line("}")]


def examples(source: Any, path: PathKey) -> list[Line]:
    _need(isinstance(source, dict) and isinstance(source.get("examples"), list))
    rest = {k: v for k, v in source.items() if k not in ("examples", "id")}
    head = "examples" + (f" {key(_str(source['id']))}" if "id" in source else "")
    items = [value(e, "  ") for e in source["examples"]]
    _need(all(isinstance(e, dict) for e in source["examples"]))
    items += [t for t, _ in settings(rest, "  ")]
    return [Line(block(head, items, "", "  "), (path,))]


def data(source: Any, path: PathKey) -> list[Line]:
    _need(isinstance(source, dict) and isinstance(source.get("path"), str))
    rest = {k: v for k, v in source.items() if k not in ("path", "id", "attribute_map")}
    head = "data" + (f" {key(_str(source['id']))}" if "id" in source else "")
    head += " " + string(source["path"], "")
    body: list[str] = []
    table = source.get("attribute_map")
    if isinstance(table, dict) and table and all(isinstance(v, str) for v in table.values()):
        body += [f"{key(str(k))} -> {key(v)}" for k, v in table.items()]
    elif "attribute_map" in source:
        rest = {"attribute_map": table, **rest}
    body += [t for t, _ in settings(rest, "  ")]
    return [Line(block(head, body) if body else head, (path,))]


def documents(source: Any, path: PathKey) -> list[Line]:
    _need(isinstance(source, dict) and isinstance(source.get("path"), str))
    rest = {k: v for k, v in source.items() if k not in ("path", "id")}
    head = f"documents {key(_str(source.get('id')))} {string(source['path'], '')}"
    body = [t for t, _ in settings(rest, "  ")]
    return [Line(block(head, body) if body else head, (path,))]


def passthrough(names: Any, path: PathKey) -> list[Line]:
    _need(isinstance(names, list) and all(isinstance(n, str) for n in names))
    lines: list[Line] = []
    current: list[str] = []
    for i, name in enumerate(names):
        if current and len("passthrough " + ", ".join([*current, key(name)])) > WIDTH:
            lines.append(Line("passthrough " + ", ".join(current), ((*path, i - len(current)),)))
            current = []
        current.append(key(name))
    if current:
        lines.append(
            Line("passthrough " + ", ".join(current), ((*path, len(names) - len(current)),))
        )
    return lines


def _str(text: Any) -> str:
    _need(isinstance(text, str))
    return str(text)


QP = ("synthc", "quality")


def quality(gates: Any) -> list[Line]:
    """``synthc.quality`` as a ``quality { ... }`` block: a line per judge, validator,
    filter and dedup; its other settings (``max_attempts``) as they are."""
    _need(
        isinstance(gates, dict)
        and set(gates) <= {"judges", "validators", "filters", "dedup"} | {"max_attempts"}
    )
    lines = [Line("quality {", (QP,))]
    if "max_attempts" in gates:
        lines.append(
            Line(f"  max_attempts {value(gates['max_attempts'], '  ')}", ((*QP, "max_attempts"),))
        )
    for i, judge in enumerate(_entries(gates, "judges")):
        _need(isinstance(judge, dict) and {"id", "rubric"} <= set(judge))
        rest = {k: v for k, v in judge.items() if k not in ("id", "rubric")}
        head = f"judge {key(_str(judge['id']))} {string(judge['rubric'], '  ')}"
        body = [t for t, _ in settings(rest, "    ", words=True)]
        tags = ((*QP, "judges", i), *([(*QP, "judges")] if i == 0 else []))
        lines.append(Line("  " + (block(head, body, "  ") if body else head), tags))
    for i, check in enumerate(_entries(gates, "validators")):
        _need(isinstance(check, dict) and "attribute" in check and len(check) > 1)
        rest = {k: v for k, v in check.items() if k != "attribute"}
        head = f"validate {key(_str(check['attribute']))}"
        body = [t for t, _ in settings(rest, "    ", words=True)]
        tags = ((*QP, "validators", i), *([(*QP, "validators")] if i == 0 else []))
        lines.append(Line("  " + block(head, body, "  "), tags))
    for i, condition in enumerate(_entries(gates, "filters")):
        tags = ((*QP, "filters", i), *([(*QP, "filters")] if i == 0 else []))
        lines.append(Line(f"  filter {string(condition, '  ')}", tags))
    dedup = _entries(gates, "dedup")
    if dedup:
        items = ", ".join(_dedup_item(entry) for entry in dedup)
        lines.append(Line(f"  dedup {items}", ((*QP, "dedup"),)))
    return [*lines, Line("}")]


def _entries(gates: dict[str, Any], name: str) -> list[Any]:
    found = gates.get(name, [])
    _need(isinstance(found, list) and (bool(found) or name not in gates))
    return list(found)


def _dedup_item(entry: Any) -> str:
    if isinstance(entry, str):
        return key(entry)
    _need(
        isinstance(entry, dict)
        and "attribute" in entry
        and set(entry) <= {"attribute", "near", "shingle"}
    )
    _need("near" in entry or "shingle" not in entry)
    near = entry.get("near")
    _need(near is None or (isinstance(near, (int, float)) and not isinstance(near, bool)))
    shingle = entry.get("shingle")
    _need(shingle is None or (isinstance(shingle, int) and not isinstance(shingle, bool)))
    text = key(_str(entry["attribute"]))
    if near is not None:
        text += f" near {near!r}"
    if shingle is not None:
        text += f" shingle {shingle!r}"
    return text
