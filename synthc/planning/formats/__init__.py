"""Draw explain's JSON (docs/explain-json.md): Graphviz DOT, one HTML page, a summary; and
a few rows of a dataset for a notebook.

dot.to_dot(data, nodes=False) -> str   # a digraph; ``dot -Tsvg`` draws it
html.to_html(data) -> str              # a self-contained page: graph, totals, filterable nodes
text.summary_text(data) -> str         # what would happen and what it would spend, 2-3 lines
rows.rows_html(summary, rows) -> str   # rows as short tables, a field per line

Each is imported from its own module where it is used, so importing one loads no other.
"""
