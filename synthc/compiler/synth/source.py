"""Read a .synth file into the same Document the YAML front end gives: the oumi mapping
plus a SourceMap from each mapping path to where it was written.

text --(grammar.parse)--> tree --(_ToParts)--> parts (path, node) --(_assemble)--> mapping
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lark import Token, Transformer, v_args
from lark.exceptions import VisitError
from lark.tree import Meta

from synthc.compiler.engines import Engine
from synthc.compiler.source import Document, PathKey, SourceMap, _read
from synthc.compiler.spec import GenerationParams, ModelParams, RemoteParams
from synthc.compiler.synth.grammar import Comment, parse
from synthc.compiler.synth.text import TextError, decode_long, decode_string
from synthc.compiler.synth.tree import Node, Part, assemble, block, flatten
from synthc.core.errors import ConfigError, Span

SP = ("strategy_params",)
IC = ("inference_config",)
QP = ("synthc", "quality")
MODEL_GROUPS = (
    ("generation", set(GenerationParams.model_fields)),
    ("remote_params", set(RemoteParams.model_fields)),
    ("model", set(ModelParams.model_fields) - {"model_name"}),
)
ENGINE_SPELLINGS = {e.value.lower(): e.value for e in Engine} | {
    e.name.lower(): e.value for e in Engine
}


@dataclass
class SynthDocument(Document):
    comments: list[Comment] = field(default_factory=list)


def load_synth(path: Path) -> SynthDocument:
    """Parse the .synth file at ``path`` into a Document."""
    text = _read(path)
    return parse_synth(text, str(path), path)


def parse_synth(text: str, name: str, path: Path | None = None) -> SynthDocument:
    tree, comments = parse(text, name)
    if not tree.children:
        raise ConfigError.at("the config is empty", Span(name, 1, 1)).with_source(text)
    try:
        parts: list[Part] = _ToParts(name).transform(tree)
        spans: dict[PathKey, Span] = {(): Span(name, 1, 1)}
        ranges: dict[PathKey, tuple[int, int]] = {}
        root = assemble(parts, Span(name, 1, 1))
        data = flatten(root, (), spans, ranges)
    except VisitError as exc:
        orig = exc.orig_exc
        if isinstance(orig, ConfigError):
            raise orig.with_source(text) from None
        raise
    except ConfigError as exc:
        raise exc.with_source(text) from None
    source_map = SourceMap(name, spans, ranges, text)
    return SynthDocument(data, source_map, text, path or Path(name), comments)


def _span(name: str, meta: Meta | Token) -> Span:
    return Span(name, getattr(meta, "line", 1) or 1, getattr(meta, "column", 1) or 1)


@dataclass(frozen=True)
class _Option:
    node: Node


@dataclass(frozen=True)
class _Message:
    node: Node


@dataclass(frozen=True)
class _Tool:
    node: Node


@dataclass(frozen=True)
class _Rename:
    old: Node
    new: Node


Item = tuple[str, Node]


def _of(kind: type[Any], children: list[Any]) -> list[Any]:
    return [c for c in children if isinstance(c, kind)]


@v_args(meta=True)
class _ToParts(Transformer[Token, Any]):
    """One method per grammar rule; statements become Parts, values become Nodes."""

    def __init__(self, name: str):
        super().__init__()
        self.name = name

    def _at(self, meta: Meta | Token) -> Span:
        return _span(self.name, meta)

    def _leaf(self, value: Any, meta: Meta | Token) -> Node:
        return Node(value, self._at(meta))

    # values --------------------------------------------------------------------------
    def string(self, meta: Meta, children: list[Token]) -> Node:
        token = children[0]
        try:
            text = decode_long(token) if token.type == "LONG_STRING" else decode_string(token)
        except TextError as exc:
            raise ConfigError.at(exc.message, self._offset(token, exc.offset)) from None
        return Node(text, self._at(token), (token.start_pos or 0, token.end_pos or 0))

    def _offset(self, token: Token, offset: int) -> Span:
        before = str(token)[:offset]
        line = (token.line or 1) + before.count("\n")
        if "\n" in before:
            return Span(self.name, line, len(before) - before.rfind("\n"))
        return Span(self.name, line, (token.column or 1) + offset)

    def number(self, meta: Meta, children: list[Token]) -> Node:
        text = str(children[0])
        is_int = not any(c in text for c in ".eE")
        return self._leaf(int(text) if is_int else float(text), children[0])

    def bare(self, meta: Meta, children: list[Token]) -> Node:
        return self._leaf(str(children[0]), children[0])

    def true(self, meta: Meta, children: list[Token]) -> Node:
        return self._leaf(True, meta)

    def false(self, meta: Meta, children: list[Token]) -> Node:
        return self._leaf(False, meta)

    def null(self, meta: Meta, children: list[Token]) -> Node:
        return self._leaf(None, meta)

    def array(self, meta: Meta, children: list[Node]) -> Node:
        return Node(children, self._at(meta))

    def key(self, meta: Meta, children: list[Token]) -> Node:
        if children[0].type == "STRING":
            return self.string(meta, children)
        return self._leaf(str(children[0]), children[0])

    def pair(self, meta: Meta, children: list[Node]) -> Item:
        key, value = children
        return str(key.value), Node(value.value, key.span, value.extent)

    def object(self, meta: Meta, children: list[Item]) -> Node:
        return block(children, self._at(meta), "this object")

    def setting(self, meta: Meta, children: list[Any]) -> Item:
        name, value = children
        return str(name), Node(value.value, self._at(name), value.extent)

    def settings(self, meta: Meta, children: list[Item]) -> list[Item]:
        return children

    # header and inference ------------------------------------------------------------
    def samples(self, meta: Meta, children: list[Node]) -> list[Part]:
        parts = [Part(("num_samples",), children[0])]
        if len(children) > 1:
            parts.append(Part(("output_path",), children[1]))
        return parts

    def model(self, meta: Meta, children: list[Any]) -> list[Part]:
        parts = []
        for child in children:
            if isinstance(child, Token):
                parts.append(Part((*IC, "engine"), self._engine(child)))
            elif isinstance(child, Node):
                parts.append(Part((*IC, "model", "model_name"), child))
            else:
                parts += [Part((*IC, *_route(k, v)), v) for k, v in child]
        return parts

    def _engine(self, token: Token) -> Node:
        engine = ENGINE_SPELLINGS.get(str(token).lower())
        if engine is None:
            names = sorted({e.value.lower() for e in Engine})
            close = difflib.get_close_matches(str(token).lower(), names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError.at(
                f"unknown engine {str(token)!r}{hint}; expected one of: {', '.join(names)}",
                self._at(token),
            )
        return self._leaf(engine, token)

    # inputs --------------------------------------------------------------------------
    def examples(self, meta: Meta, children: list[Any]) -> list[Part]:
        at = self._at(meta)
        nodes = _of(Node, children)
        ident = [("id", n) for n in nodes if isinstance(n.value, str)]
        found = [n for n in nodes if not isinstance(n.value, str)]
        items = [("examples", Node(found, at)), *ident, *_of(tuple, children)]
        return [Part((*SP, "input_examples"), block(items, at), append=True)]

    def data(self, meta: Meta, children: list[Any]) -> list[Part]:
        *ident, path = _of(Node, children)
        items = [("path", path), *[("id", i) for i in ident]]
        for body in _of(list, children):
            items += body
        return [Part((*SP, "input_data"), block(items, self._at(meta)), append=True)]

    def data_body(self, meta: Meta, children: list[Any]) -> list[Item]:
        renames: list[_Rename] = _of(_Rename, children)
        items: list[Item] = _of(tuple, children)
        if renames:
            table = block([(str(r.old.value), r.new) for r in renames], renames[0].old.span)
            items.insert(0, ("attribute_map", table))
        return items

    def rename(self, meta: Meta, children: list[Node]) -> _Rename:
        return _Rename(children[0], children[1])

    def documents(self, meta: Meta, children: list[Any]) -> list[Part]:
        ident, path, *rest = children
        items = [("id", ident), ("path", path), *(rest[0] if rest else [])]
        return [Part((*SP, "input_documents"), block(items, self._at(meta)), append=True)]

    # attributes ----------------------------------------------------------------------
    def sample(self, meta: Meta, children: list[Any]) -> list[Part]:
        at = self._at(meta)
        ident, *texts = [c for c in children if isinstance(c, Node) and c.value.__class__ is str]
        options = [c.node if isinstance(c, _Option) else c for c in children[1 + len(texts) :]]
        items = [("id", ident), *zip(("name", "description"), texts, strict=False)]
        items.append(("possible_values", Node(options, at)))
        return [Part((*SP, "sampled_attributes"), block(items, at), append=True)]

    def option(self, meta: Meta, children: list[Any]) -> _Option:
        ident = self._leaf(str(children[0]), children[0])
        texts = _of(Node, children[1:])
        items = [("id", ident), *zip(("name", "description"), texts, strict=False)]
        return _Option(block([*items, *_of(tuple, children)], ident.span))

    def rate(self, meta: Meta, children: list[Node]) -> Item:
        return "sample_rate", children[0]

    def combine(self, meta: Meta, children: list[Any]) -> list[Part]:
        items: list[Item] = [("combination", children[0]), *children[1:]]
        entry = block(items, self._at(meta))
        return [Part((*SP, "combination_sampling"), entry, append=True)]

    def generate(self, meta: Meta, children: list[Any]) -> list[Part]:
        at = self._at(meta)
        messages = [m.node for m in _of(_Message, children)]
        items = [("id", children[0]), ("instruction_messages", Node(messages, at))]
        items += _of(tuple, children)
        return [Part((*SP, "generated_attributes"), block(items, at), append=True)]

    def postprocess(self, meta: Meta, children: list[Any]) -> Item:
        ident, *rest = children
        items = [("id", ident), *(rest[0] if rest else [])]
        return "postprocessing_params", block(items, self._at(meta))

    def message(self, meta: Meta, children: list[Node]) -> _Message:
        role, content = children
        return _Message(block([("role", role), ("content", content)], role.span))

    def system(self, meta: Meta, children: list[Token]) -> Node:
        return self._leaf("SYSTEM", meta)

    def user(self, meta: Meta, children: list[Token]) -> Node:
        return self._leaf("USER", meta)

    def assistant(self, meta: Meta, children: list[Token]) -> Node:
        return self._leaf("ASSISTANT", meta)

    def tool(self, meta: Meta, children: list[Token]) -> Node:
        return self._leaf("TOOL", meta)

    def string_transform(self, meta: Meta, children: list[Node]) -> list[Part]:
        return self._transform(meta, children[0], "STRING", children[1])

    def list_transform(self, meta: Meta, children: list[Node]) -> list[Part]:
        return self._transform(meta, children[0], "LIST", children[1])

    def dict_transform(self, meta: Meta, children: list[Node]) -> list[Part]:
        return self._transform(meta, children[0], "DICT", children[1])

    def chat_transform(self, meta: Meta, children: list[Any]) -> list[Part]:
        at = self._at(meta)
        messages = Node([m.node for m in _of(_Message, children)], at)
        body = block([("messages", messages), *_of(tuple, children)], at)
        return self._transform(meta, children[0], "CHAT", body)

    def _transform(self, meta: Meta, ident: Node, kind: str, body: Node) -> list[Part]:
        at = self._at(meta)
        strategy = block([("type", Node(kind, at)), (f"{kind.lower()}_transform", body)], at)
        entry = block([("id", ident), ("transformation_strategy", strategy)], at)
        return [Part((*SP, "transformed_attributes"), entry, append=True)]

    def multiturn(self, meta: Meta, children: list[Any]) -> list[Part]:
        at = self._at(meta)
        items: list[Item] = [("id", children[0])]
        for turns in _of(list, children):
            items += turns
        items += _of(tuple, children)
        roles = [
            (m.node.value["role"].value, m.node.value["content"]) for m in _of(_Message, children)
        ]
        if roles:
            items.append(("role_instruction_messages", block(roles, at, "this multiturn")))
        return [Part((*SP, "multiturn_attributes"), block(items, at), append=True)]

    def turns(self, meta: Meta, children: list[Node]) -> list[Item]:
        return [("min_turns", children[0]), ("max_turns", children[1])]

    def environment(self, meta: Meta, children: list[Any]) -> list[Part]:
        at = self._at(meta)
        items: list[Item] = list(zip(("id", "env_type"), _of(Node, children), strict=False))
        items += _of(tuple, children)
        tools = [t.node for t in _of(_Tool, children)]
        if tools:
            items.append(("tools", Node(tools, tools[0].span)))
        entry = block(items, at)
        return [Part(("environment_config", "environments"), entry, append=True)]

    def tool_def(self, meta: Meta, children: list[Any]) -> _Tool:
        ident, *rest = children
        return _Tool(block([("id", ident), *(rest[0] if rest else [])], self._at(meta)))

    def passthrough(self, meta: Meta, children: list[Node]) -> list[Part]:
        return [Part((*SP, "passthrough_attributes"), c, append=True) for c in children]

    # quality gates ---------------------------------------------------------------------
    def quality(self, meta: Meta, children: list[Any]) -> list[Part]:
        parts: list[Part] = []
        for child in children:
            if isinstance(child, tuple):  # max_attempts 4
                parts.append(Part((*QP, child[0]), child[1]))
            else:
                parts += child
        return parts

    def judge(self, meta: Meta, children: list[Any]) -> list[Part]:
        ident, rubric, *rest = children
        items = [("id", ident), ("rubric", rubric), *(rest[0] if rest else [])]
        return [Part((*QP, "judges"), block(items, self._at(meta), "this judge"), append=True)]

    def validate(self, meta: Meta, children: list[Any]) -> list[Part]:
        attribute, checks = children
        entry = block([("attribute", attribute), *checks], self._at(meta), "this validate")
        return [Part((*QP, "validators"), entry, append=True)]

    def filter(self, meta: Meta, children: list[Node]) -> list[Part]:
        return [Part((*QP, "filters"), children[0], append=True)]

    def dedup(self, meta: Meta, children: list[Node]) -> list[Part]:
        return [Part((*QP, "dedup"), c, append=True) for c in children]

    def dedup_item(self, meta: Meta, children: list[Any]) -> Node:
        attribute: Node = children[0]
        near = children[1:]
        if not near:
            return attribute
        return block([("attribute", attribute), *near[0]], attribute.span)

    def near(self, meta: Meta, children: list[Node]) -> list[Item]:
        return list(zip(("near", "shingle"), children, strict=False))

    def start(self, meta: Meta, children: list[Any]) -> list[Part]:
        parts: list[Part] = []
        for child in children:
            if (
                isinstance(child, tuple)
                and child[0] == "synthc"
                and isinstance(child[1].value, dict)
            ):
                # synthc { ... } key by key, so that a quality block can join it
                parts += [Part(("synthc", k), v) for k, v in child[1].value.items()]
            elif isinstance(child, tuple):
                parts.append(Part((child[0],), child[1]))
            else:
                parts += child
        return parts


def _route(name: str, node: Node) -> PathKey:
    for group, fields in MODEL_GROUPS:
        if name in fields:
            return (group, name)
    if name == "model_name":
        return ("model", name)
    known = sorted(set().union(*(f for _, f in MODEL_GROUPS)) | {"model_name"})
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ConfigError.at(f"unknown model setting {name!r}{hint}", node.span)
