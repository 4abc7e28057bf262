"""GRPO reward functions of the Iberotales study, exactly as its source defines them.

Each takes TRL's reward signature: the batch's `completions` (conversational, a list of
messages whose first message is read, or plain strings), the data set's other columns as
keyword arguments (`answer`, ...), and whatever else TRL passes (`prompts`,
`trainer_state`, ...) in `**kwargs`. Each returns one float per completion.

A study names its rewards in config (`method.rewards`): a name registered here, or
`package.module:function` for a reward of its own with the same signature.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any, cast

from semillero.errors import did_you_mean

RewardFunc = Callable[..., list[float]]

# The source's format: reasoning, then a solution, nothing else around them. Searched, not
# full-matched, with MULTILINE and DOTALL, as in the source.
FORMAT = re.compile(
    r"^[\s]{0,}<think>.+?</think>.*?<SOLUTION>(.+?)</SOLUTION>[\s]{0,}$",
    flags=re.MULTILINE | re.DOTALL,
)
TAGS = ("<think>", "</think>", "<SOLUTION>", "</SOLUTION>")
# A looser read used only by the evaluation: a solution anywhere, whatever surrounds it.
ANY_SOLUTION = re.compile(r"<SOLUTION>(.+?)</SOLUTION>", flags=re.DOTALL)


def completion_text(completion: str | Sequence[dict[str, Any]]) -> str:
    """The text of one completion: a plain string, or the first message's content.

    >>> completion_text("<think>a</think>")
    '<think>a</think>'
    >>> completion_text([{"role": "assistant", "content": "hola"}])
    'hola'
    """
    if isinstance(completion, str):
        return completion
    return str(completion[0]["content"])


def extract_solution(text: str) -> str | None:
    """Group 1 of the format pattern, or None when the format is not followed.

    >>> extract_solution("<think>pienso</think><SOLUTION>el Cadejo</SOLUTION>")
    'el Cadejo'
    >>> extract_solution("<SOLUTION>sin pensar</SOLUTION>") is None
    True
    """
    match = FORMAT.search(text)
    return match.group(1) if match else None


def match_format_exactly(completions: Sequence[Any], **kwargs: Any) -> list[float]:
    """3.0 when the completion follows the format (the pattern is found), else 0.

    >>> ok = "<think>Debo recordar.</think><SOLUTION>Un duende.</SOLUTION>"
    >>> match_format_exactly([ok, "  " + ok + "\\n", "Un duende.", ok + " y algo más"])
    [3.0, 3.0, 0.0, 0.0]
    >>> match_format_exactly([[{"role": "assistant", "content": ok}]])
    [3.0]
    """
    return [3.0 if FORMAT.search(completion_text(c)) else 0.0 for c in completions]


def match_format_approximately(completions: Sequence[Any], **kwargs: Any) -> list[float]:
    """+0.5 for each of the four tags that occurs exactly once, -0.5 for each that does not.

    >>> match_format_approximately(["<think>a</think><SOLUTION>b</SOLUTION>"])
    [2.0]
    >>> match_format_approximately(["<think><think>a</think>", "sin etiquetas"])
    [-1.0, -2.0]
    >>> match_format_approximately(["</SOLUTION>b<SOLUTION></think>a<think>"])  # order ignored
    [2.0]
    """
    scores = []
    for c in completions:
        text = completion_text(c)
        scores.append(sum(0.5 if text.count(tag) == 1 else -0.5 for tag in TAGS))
    return scores


def check_text_similarity(
    completions: Sequence[Any], answer: Sequence[str], **kwargs: Any
) -> list[float]:
    """3 x the share of the reference answer's words found in the extracted solution.

    Both sides are stripped, lower-cased and split on whitespace into word sets; no format
    means 0, and so does a reference with no words. Punctuation stays part of a word.

    >>> done = "<think>x</think><SOLUTION>El Pombero cuida el monte</SOLUTION>"
    >>> check_text_similarity([done], answer=["el pombero cuida el monte"])
    [3.0]
    >>> check_text_similarity([done], answer=["El Pombero silba."])  # 'silba.' is missing
    [2.0]
    >>> check_text_similarity(["El Pombero cuida el monte"], answer=["el pombero"])
    [0.0]
    >>> check_text_similarity([done], answer=["   "])
    [0.0]
    """
    scores = []
    for c, reference in zip(completions, answer, strict=True):
        guess = extract_solution(completion_text(c))
        if guess is None:
            scores.append(0.0)
            continue
        guess_words = set(guess.strip().lower().split())
        true_words = set(reference.strip().lower().split())
        if not true_words:
            scores.append(0.0)
            continue
        scores.append(3.0 * len(guess_words & true_words) / len(true_words))
    return scores


REWARDS: dict[str, RewardFunc] = {
    f.__name__: f for f in (match_format_exactly, match_format_approximately, check_text_similarity)
}


# What TRL passes a reward by keyword besides the data set's columns.
TRL_ARGUMENTS = ("prompts", "completions", "completion_ids", "trainer_state")


def check_signature(name: str, func: Callable[..., Any], columns: Iterable[str] = ()) -> None:
    """TRL calls a reward with keyword arguments only: TRL_ARGUMENTS and every column of the
    data set (`columns`, with the method's roles such as `answer`). A function that cannot
    take them fails in the first training step; here it is a config error."""
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):  # a builtin without a signature: TRL will tell
        return
    known = {*TRL_ARGUMENTS, *columns}
    needed = [
        p.name
        for p in params
        if p.default is p.empty
        and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        and p.name not in known
    ]
    positional = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.VAR_POSITIONAL)]
    takes_rest = any(p.kind is p.VAR_KEYWORD for p in params)
    if not takes_rest or needed or positional:
        wrong = needed or positional
        raise ValueError(
            f"reward {name!r} cannot take TRL's keyword arguments ({', '.join(sorted(known))}"
            ", and any other column): write it as def reward(completions, **kwargs) -> "
            "list[float], reading columns such as kwargs['answer']"
            + (f"; it asks for {', '.join(map(repr, wrong))}" if wrong else "")
        )


def resolve_reward(name: str) -> RewardFunc:
    """A reward by registered name, or `package.module:function`; ValueError names the fix."""
    if name in REWARDS:
        return REWARDS[name]
    if ":" in name:
        module_name, _, attr = name.partition(":")
        try:
            func = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ValueError(
                f"reward {name!r} cannot be imported ({exc}); check the module path and that "
                "the function exists"
            ) from None
        if not callable(func):
            raise ValueError(f"reward {name!r} is not a function")
        return cast(RewardFunc, func)
    raise ValueError(
        f"unknown reward {name!r}.{did_you_mean(name, REWARDS)} Rewards: "
        f"{', '.join(REWARDS)}; or give your own as package.module:function"
    )
