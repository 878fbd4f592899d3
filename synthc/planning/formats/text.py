"""Explain's JSON (docs/explain-json.md) in a few lines of plain text."""

from __future__ import annotations

from typing import Any


def summary_text(data: dict[str, Any]) -> str:
    """Two lines: what would happen, and what it would spend; a third when the counts
    are estimated from some of the samples."""
    t, e = data["totals"], data["estimate"]
    remote = sum(data.get("remote_hits", {}).values())
    tiers = f" ({t['cached'] - remote} local, {remote} remote)" if remote else ""
    lines = [
        f"{t['nodes']} nodes: {t['cached']} cached{tiers}, {t['run']} to run, {t['blocked']} "
        f"blocked on an upstream node, {t['failed']} failing"
    ]
    cost, cost_max = e.get("cost_usd", e["cost_usd_max"]), e["cost_usd_max"]
    expected, most = e.get("output_tokens", e["output_tokens_max"]), e["output_tokens_max"]
    if cost_max is None:
        price = "unknown price"
    elif expected < most:  # some rules' outputs are known from their answered requests
        price = f"~${cost:,.4f} (at most ${cost_max:,.4f})"
    else:
        price = f"at most ${cost_max:,.4f}"
    if e.get("batch"):
        price += " at the batch price (half the online price: a batch build)"
    outputs = (
        f"~{expected:,} output tokens (at most {most:,})"
        if expected < most
        else f"at most {most:,} output tokens"
    )
    lines.append(
        f"estimate: {e['requests']} requests, ~{e['input_tokens']:,} input tokens, "
        f"{outputs}, {price}"
    )
    if quality := data.get("quality"):
        decided = quality["kept"] + quality["given_up"]
        rejected = sum(quality["rejected"].values())
        rate = quality["acceptance"]
        lines.append(
            f"quality gates: {quality['kept']:,} of {decided:,} decided slots kept, "
            f"{rejected:,} rows rejected, {quality['given_up']:,} given up"
            + (
                f"; {rate:.0%} of judged rows kept, so about "
                f"{quality['expected_attempts']:.2f} attempts a slot (in the estimate)"
                if rate is not None
                else "; no row judged yet (the estimate counts one attempt a slot)"
            )
        )
    if sampled := data.get("sampled"):
        lines.append(
            f"(counted from {sampled['samples_walked']:,} of {data['num_samples']:,} samples: "
            f"the first {sampled['exact_samples']:,}, then one in {sampled['every']:,}; "
            "explain --all looks at every one)"
        )
    return "\n".join(lines)
