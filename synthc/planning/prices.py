"""What hosted models charge: a model name in, USD per million tokens (input, output) out.

The table is dated (``CHECKED``) and every row comes from a page read that day:
the provider's own pricing or model page where one was found, otherwise a dated
copy of it or a catalog that cites it (models.dev for Together and Fireworks);
the sources are listed by provider below. Prices are the standard (online) tier
for uncached input, at the base rate where a provider charges more for long
prompts (OpenAI over 272K tokens, Gemini Pro over 200K, Claude Haiku 5.5 over
100K) and at DeepSeek's peak hours. Batch APIs halve them (``BATCH_PRICE`` in
explain). Prices change: ``--prices FILE`` (YAML or JSON: ``model: {input: USD,
output: USD}``) overrides or extends the table, and a stale row is a bug to report.
"""

from __future__ import annotations

import re

CHECKED = "2026-12-02"  # the day every row below was read

# USD per million tokens: (input, output).
PRICES: dict[str, tuple[float, float]] = {
    # OpenAI: developers.openai.com/api/docs/models/<id> (the model pages; gpt-5, gpt-4.1,
    # gpt-4o, o3, o4-mini from dated copies of openai.com/api/pricing)
    "gpt-6.2-sol": (2.00, 10.00),
    "gpt-6.1-sol": (2.00, 10.00),
    "gpt-6.1-terra": (1.00, 5.00),
    "gpt-6-astra": (10.00, 50.00),
    "gpt-6-sol": (2.00, 10.00),
    "gpt-6-luna": (0.10, 0.50),
    "gpt-5.6-terra": (2.00, 12.00),
    "gpt-5.6-luna": (0.20, 1.20),
    "gpt-5.5": (5.00, 30.00),
    "gpt-5.4": (2.50, 15.00),
    "gpt-5.4-mini": (0.75, 4.50),
    "gpt-5.4-nano": (0.20, 1.25),
    "gpt-5": (1.25, 10.00),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5-nano": (0.05, 0.40),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "o3": (2.00, 8.00),
    "o4-mini": (1.10, 4.40),
    # Anthropic: platform.claude.com/docs/en/about-claude/pricing and the model overviews
    "claude-fable-5-2": (8.00, 40.00),
    "claude-fable-5-1": (10.00, 50.00),
    "claude-fable-5": (10.00, 50.00),
    "claude-opus-5-5": (4.00, 20.00),
    "claude-opus-5": (5.00, 25.00),
    "claude-opus-4-8": (5.00, 25.00),
    "claude-opus-4-7": (5.00, 25.00),
    "claude-opus-4-6": (5.00, 25.00),
    "claude-opus-4-5": (5.00, 25.00),
    "claude-sonnet-5-5": (2.00, 10.00),
    "claude-sonnet-5": (2.00, 10.00),
    "claude-sonnet-4-6": (3.00, 15.00),
    "claude-sonnet-4-5": (3.00, 15.00),
    "claude-sonnet-4": (3.00, 15.00),
    "claude-haiku-5-5": (0.10, 0.50),
    "claude-haiku-4-5": (1.00, 5.00),
    # retired on the Claude API; their last list prices, for configs that still name them
    "claude-3-5-sonnet": (3.00, 15.00),
    "claude-3-5-haiku": (0.80, 4.00),
    # Google Gemini (Developer API, paid tier): ai.google.dev/gemini-api/docs/pricing (a copy
    # read 2026-10-07) and models.dev; 3.6 and 3.8 Flash at their prices through 2026-12-31
    "gemini-3.8-flash": (0.75, 3.75),
    "gemini-3.7-flash": (1.50, 7.50),
    "gemini-3.6-flash": (0.75, 3.75),
    "gemini-3.5-flash": (1.50, 9.00),
    "gemini-3.5-flash-lite": (0.30, 2.50),
    "gemini-3.1-flash-lite": (0.25, 1.50),
    "gemini-3.1-pro-preview": (2.00, 12.00),
    "gemini-3-flash-preview": (0.50, 3.00),
    "gemini-2.5-pro": (1.25, 10.00),
    "gemini-2.5-flash": (0.30, 2.50),
    "gemini-2.5-flash-lite": (0.10, 0.40),
    # DeepSeek: api-docs.deepseek.com/quick_start/pricing (peak hours; off-peak is half)
    "deepseek-flash": (0.30, 1.20),
    "deepseek-v4-flash": (0.30, 1.20),  # served and billed as deepseek-flash
    "deepseek-v4-pro": (1.32, 3.96),
    # Together AI (serverless): docs.together.ai and models.dev's togetherai catalog
    "deepseek-ai/DeepSeek-V4-Pro": (2.10, 4.40),
    "deepseek-ai/DeepSeek-V4.1-Flash": (0.30, 1.20),
    "deepseek-ai/DeepSeek-V3.1": (0.60, 1.70),
    "deepseek-ai/DeepSeek-R1": (3.00, 7.00),
    "moonshotai/Kimi-K3": (3.00, 15.00),
    "moonshotai/Kimi-K2.6": (1.20, 4.50),
    "zai-org/GLM-5.3": (1.40, 4.40),
    "MiniMaxAI/MiniMax-M3": (0.30, 1.20),
    "Qwen/Qwen3.7-Max": (1.25, 3.75),
    "Qwen/Qwen3.5-397B-A17B": (0.60, 3.60),
    "Qwen/Qwen3-235B-A22B-Instruct-2507-tput": (0.20, 0.60),
    "openai/gpt-oss-120b": (0.15, 0.60),
    "openai/gpt-oss-20b": (0.05, 0.20),
    "meta-llama/Llama-3.3-70B-Instruct-Turbo": (0.88, 0.88),
    # Fireworks AI (serverless): docs.fireworks.ai/serverless/pricing and models.dev
    "accounts/fireworks/models/deepseek-v4-pro": (1.74, 3.48),
    "accounts/fireworks/models/deepseek-v4-pro-0813": (1.32, 3.96),
    "accounts/fireworks/models/glm-5p3": (1.40, 4.40),
    "accounts/fireworks/models/glm-5p1": (1.40, 4.40),
    "accounts/fireworks/models/kimi-k2p7-code": (0.95, 4.00),
    "accounts/fireworks/models/kimi-k2p6": (0.95, 4.00),
    "accounts/fireworks/models/kimi-k2p5": (0.60, 3.00),
    "accounts/fireworks/models/minimax-m3": (0.30, 1.20),
    "accounts/fireworks/models/qwen3p8-max": (2.00, 6.00),
    "accounts/fireworks/models/gpt-oss-120b": (0.15, 0.60),
    "accounts/fireworks/models/gpt-oss-20b": (0.07, 0.30),
}

# A dated snapshot of a model: claude-haiku-4-5-20251001, gpt-4o-2024-08-06, -latest.
_SNAPSHOT = re.compile(r"-(\d{8}|\d{4}-\d{2}-\d{2}|latest)$")


def price(
    model: str, table: dict[str, tuple[float, float]] | None = None
) -> tuple[float, float] | None:
    """``model``'s price from ``table`` (the built-in one by default): the name as given,
    else without its snapshot date (``claude-sonnet-4-5-20250929`` → ``claude-sonnet-4-5``)."""
    table = PRICES if table is None else table
    found = table.get(model)
    if found is None and (base := _SNAPSHOT.sub("", model)) != model:
        found = table.get(base)
    return found
