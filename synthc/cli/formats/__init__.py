"""Draw explain's JSON (docs/explain-json.md) as pictures: Graphviz DOT and one HTML page.

to_dot(data, nodes=False) -> str   # a digraph; ``dot -Tsvg`` draws it
to_html(data) -> str               # a self-contained page: graph, totals, filterable nodes
"""

from __future__ import annotations

from synthc.cli.formats.dot import to_dot
from synthc.cli.formats.html import to_html

__all__ = ["to_dot", "to_html"]
