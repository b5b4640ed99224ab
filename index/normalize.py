"""Script handling: OpenCC Traditional -> Simplified for matching, and back for display.

>>> to_simplified("擴大社會保險覆蓋面")
'扩大社会保险覆盖面'
>>> detect_script("自由職業者怎麼交養老保險"), detect_script("自由职业者怎么交养老保险")
('traditional', 'simplified')
"""
from __future__ import annotations

from functools import lru_cache

import opencc


@lru_cache(maxsize=None)
def _converter(config: str) -> opencc.OpenCC:
    return opencc.OpenCC(config)


def to_simplified(text: str) -> str:
    """Normalised form used for matching and embedding (OpenCC t2s)."""
    return _converter("t2s").convert(text) if text else text


def detect_script(text: str) -> str:
    """'traditional' when converting to Simplified changes a noticeable share of the CJK characters."""
    cjk = [ch for ch in text if "\u4e00" <= ch <= "\u9fff"]
    if not cjk:
        return "simplified"
    simp = to_simplified("".join(cjk))
    changed = sum(a != b for a, b in zip(cjk, simp))
    return "traditional" if changed >= max(1, 0.1 * len(cjk)) else "simplified"


def detect_variant(text: str) -> str:
    """OpenCC target config that reproduces a Traditional text best: 's2tw', 's2hk' or 's2t'.

    >>> detect_variant("裡面的軟體")
    's2tw'
    """
    simp = to_simplified(text)
    best, best_score = "s2t", -1
    for config in ("s2t", "s2tw", "s2hk", "s2twp"):
        conv = _converter(config).convert(simp)
        score = sum(a == b for a, b in zip(conv, text))
        if score > best_score:
            best, best_score = config, score
    return best


def to_script(text: str, script: str, variant: str = "s2t") -> str:
    """Render text in 'simplified' or 'traditional' (with the given OpenCC variant)."""
    if script == "traditional":
        return _converter(variant).convert(to_simplified(text))
    return to_simplified(text)
