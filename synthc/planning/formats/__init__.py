"""Draw explain's JSON (docs/explain-json.md): Graphviz DOT, one HTML page, a summary; and
a few rows of a dataset for a notebook.

to_dot(data, nodes=False) -> str   # a digraph; ``dot -Tsvg`` draws it
to_html(data) -> str               # a self-contained page: graph, totals, filterable nodes
summary_text(data) -> str          # what would happen and what it would spend, in 2-3 lines
rows_html(summary, rows) -> str    # rows as short tables, a field per line
"""

from __future__ import annotations

from synthc.planning.formats.dot import to_dot
from synthc.planning.formats.html import to_html
from synthc.planning.formats.rows import rows_html
from synthc.planning.formats.text import summary_text

__all__ = ["rows_html", "summary_text", "to_dot", "to_html"]
