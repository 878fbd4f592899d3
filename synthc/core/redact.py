"""Hide secrets in what synthc prints: a line of config or a command-line override in, masked out.

A value is secret when the key naming it looks like one: a word of the name (split
at ``_``, ``-`` and ``.``) is key, token, secret, password or passwd, or the whole
name is within two edits of ``api_key`` (``api_kee``, ``apikey``, ``api_kye``). A
misspelled key is reported as unknown, and the report quotes the config line: the
value must not ride along.
"""

from __future__ import annotations

import re

SECRET_WORDS = frozenset({"key", "token", "secret", "password", "passwd", "apikey"})
MASK = "***"
_NAME = r"[A-Za-z_][\w.-]*"
_VALUE = r"\"(?:[^\"\\]|\\.)*\"|'[^']*'|[^\s,{}\[\]][^\s,}\]]*"
# `name: value`, `name = value`, `"name": "value"` anywhere on a line (YAML, JSON, flow maps)
_PAIR = re.compile(rf"(?P<q>[\"']?)(?P<name>{_NAME})(?P=q)(?P<sep>\s*[:=]\s*)(?P<value>{_VALUE})")
# `name value` opening a line (a .synth setting)
_SETTING = re.compile(rf"^(?P<lead>\s*)(?P<name>{_NAME})(?P<sep>\s+)(?P<value>{_VALUE})")


def looks_secret(name: str) -> bool:
    """Whether a key called ``name`` probably holds a secret."""
    lowered = name.lower().rsplit(".", 1)[-1]
    words = re.split(r"[_\-.]+", lowered)
    return bool(SECRET_WORDS.intersection(words)) or _distance(lowered, "api_key") <= 2


def mask_line(line: str) -> str:
    """``line`` with the value of every secret-looking key replaced by ``***``."""

    def masked(match: re.Match[str]) -> str:
        if not looks_secret(match["name"]):
            return match[0]
        return match[0][: match.start("value") - match.start()] + MASK

    return _SETTING.sub(masked, _PAIR.sub(masked, line), count=1)


def _distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions), for short names."""
    previous = list(range(len(b) + 1))
    for i, char in enumerate(a, 1):
        current = [i]
        for j, other in enumerate(b, 1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char != other))
            )
        previous = current
    return previous[-1]
