"""The style sheet and script inlined into explain's HTML page (no network, no external files).

The script filters the node table by status, reason check and rule. Filters
come from the ``<select>`` controls, from a click on a rule in the graph, and
from the URL fragment (``page.html#status=run&reason=modified.template``),
which it keeps in step with the controls. Rows that do not match get the
``hidden`` attribute, so a DOM dump shows exactly what a reader sees.
"""

from __future__ import annotations

CSS = """
:root { color-scheme: light; --ink: #1d2329; --muted: #66707a; --line: #d9dee3; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--ink); background: #f6f7f9; }
header, main { max-width: 1600px; margin: 0 auto; padding: 0 20px; }
header { padding-top: 18px; }
h1 { font-size: 20px; margin: 0 0 2px; }
h2 { font-size: 15px; margin: 22px 0 8px; }
.sub { color: var(--muted); }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin-top: 12px; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 8px;
  padding: 8px 14px; min-width: 104px; }
.card .label { color: var(--muted); font-size: 12px; }
.card .value { font-size: 20px; font-weight: 600; }
.panel { background: #fff; border: 1px solid var(--line); border-radius: 8px;
  padding: 10px; overflow-x: auto; }
#rule-graph .edge { fill: none; stroke: #6b6b6b; stroke-width: 1.4; }
#rule-graph text { font-family: inherit; fill: var(--ink); }
#rule-graph .name { font-size: 14px; font-weight: 600; }
#rule-graph .kind, #rule-graph .cell-label { font-size: 11px; fill: var(--muted); }
#rule-graph .cell-value { font-size: 14px; font-weight: 600; }
#rule-graph .muted { fill: #a3abb3; font-weight: 400; }
#rule-graph .rule-box { cursor: pointer; }
#rule-graph .rule-box:hover rect:first-of-type, #rule-graph .rule-box.selected rect:first-of-type
  { stroke-width: 3; }
.s-cached { color: #1f6fb2; fill: #1f6fb2; } .s-run { color: #2e7d32; fill: #2e7d32; }
.s-blocked { color: #a87400; fill: #a87400; } .s-failed { color: #c62828; fill: #c62828; }
.legend { display: flex; gap: 14px; flex-wrap: wrap; margin-top: 8px; font-size: 12px;
  color: var(--muted); }
.legend i { display: inline-block; width: 11px; height: 11px; border-radius: 3px;
  margin-right: 5px; vertical-align: -1px; border: 1px solid; }
.filters { display: flex; flex-wrap: wrap; gap: 14px; align-items: center; margin-bottom: 10px; }
.filters label { color: var(--muted); }
.filters select { margin-left: 4px; font: inherit; padding: 2px 4px; max-width: 16em; }
#shown-count { color: var(--muted); margin-left: auto; }
table { border-collapse: collapse; width: 100%; background: #fff; }
th, td { text-align: left; vertical-align: top; padding: 6px 8px;
  border-bottom: 1px solid var(--line); }
th { font-size: 12px; color: var(--muted); font-weight: 600; background: #fafbfc; }
tr[hidden] { display: none; }
code, .key { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace;
  font-size: 12px; }
.status { display: inline-block; padding: 0 7px; border-radius: 10px; font-size: 12px;
  font-weight: 600; border: 1px solid currentColor; }
.reason { margin: 1px 0; }
.check { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px;
  background: #eef1f4; border-radius: 4px; padding: 0 5px; margin-right: 6px; }
.detail { white-space: pre-wrap; word-break: break-word; }
.note { color: var(--muted); margin: 8px 2px; }
footer { max-width: 1600px; margin: 24px auto; padding: 0 20px; color: var(--muted);
  font-size: 12px; }
"""

JS = """
(function () {
  "use strict";
  var names = ["status", "reason", "rule"];
  var rows = Array.prototype.slice.call(document.querySelectorAll("tr.node-row"));
  var boxes = Array.prototype.slice.call(document.querySelectorAll("#rule-graph .rule-box"));
  var count = document.getElementById("shown-count");
  var none = document.getElementById("no-match");
  window.explainData = JSON.parse(document.getElementById("explain-data").textContent);

  function control(name) { return document.getElementById(name + "-filter"); }

  function has(select, value) {
    return Array.prototype.some.call(select.options, function (o) { return o.value === value; });
  }

  function readHash() {
    var params = new URLSearchParams(window.location.hash.replace(/^#/, ""));
    names.forEach(function (name) {
      var value = params.get(name) || "";
      control(name).value = has(control(name), value) ? value : "";
    });
  }

  function writeHash() {
    var params = new URLSearchParams();
    names.forEach(function (name) {
      if (control(name).value) { params.set(name, control(name).value); }
    });
    var hash = params.toString();
    try {
      window.history.replaceState(null, "", hash ? "#" + hash : window.location.pathname);
    } catch (e) { /* some file:// contexts refuse; the filter still applies */ }
  }

  function matches(row, status, reason, rule) {
    return (!status || row.getAttribute("data-status") === status) &&
      (!reason || row.getAttribute("data-checks").split(" ").indexOf(reason) >= 0) &&
      (!rule || row.getAttribute("data-rule") === rule);
  }

  function apply() {
    var status = control("status").value, reason = control("reason").value;
    var rule = control("rule").value, shown = 0;
    rows.forEach(function (row) {
      var ok = matches(row, status, reason, rule);
      row.hidden = !ok;
      if (ok) { shown += 1; }
    });
    boxes.forEach(function (box) {
      box.classList.toggle("selected", !!rule && box.getAttribute("data-rule") === rule);
    });
    count.textContent = shown + " of " + rows.length + " listed nodes shown";
    count.setAttribute("data-shown", String(shown));
    none.hidden = shown > 0 || rows.length === 0;
  }

  names.forEach(function (name) {
    control(name).addEventListener("change", function () { writeHash(); apply(); });
  });
  boxes.forEach(function (box) {
    box.addEventListener("click", function () {
      var rule = box.getAttribute("data-rule"), select = control("rule");
      if (has(select, rule)) { select.value = select.value === rule ? "" : rule; }
      writeHash();
      apply();
    });
  });
  window.addEventListener("hashchange", function () { readHash(); apply(); });
  readHash();
  apply();
  document.body.setAttribute("data-ready", "1");
}());
"""
