"""A study's own reward, given to method.rewards as tests.helpers.rewards:vowel_share.

A random twin never writes the Iberotales format, so the study's rewards are the same for
every completion and GRPO has nothing to learn from; this one varies with the text.
"""

from __future__ import annotations

from typing import Any

from semillero.rewards import completion_text


def vowel_share(completions: list[Any], **kwargs: Any) -> list[float]:
    """The share of vowels among a completion's characters.

    >>> vowel_share(["aab", [{"content": ""}]])
    [0.6666666666666666, 0.0]
    """
    scores = []
    for c in completions:
        text = completion_text(c)
        scores.append(sum(ch in "aeiouáéíóú" for ch in text.lower()) / max(len(text), 1))
    return scores


def answer_length(completions: list[Any], answer: list[str], **kwargs: Any) -> list[float]:
    """The reference answer's length in characters, for each completion (a reward that asks
    for a data set column by name, as TRL passes it)."""
    return [float(len(a)) for a in answer[: len(completions)]]
