"""The Iberotales rewards, against the behaviour studies.md specifies, on edge cases."""

from __future__ import annotations

import pytest

from semillero.errors import ConfigError
from semillero.rewards import (
    check_text_similarity,
    extract_solution,
    match_format_approximately,
    match_format_exactly,
    resolve_reward,
)

GOOD = "<think>Debo recordar al Cadejo.</think><SOLUTION>Un perro negro que cuida.</SOLUTION>"


def chat(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


@pytest.mark.parametrize(
    ("text", "exact", "approx"),
    [
        (GOOD, 3.0, 2.0),
        # whitespace around the format is allowed (\s* at both ends) ...
        ("  \n" + GOOD + "\n\t ", 3.0, 2.0),
        # ... text after </SOLUTION> is not (the pattern is anchored at a line end) ...
        (GOOD + " Fin.", 0.0, 2.0),
        # ... unless it starts a new line: MULTILINE lets $ match before it (the source's rule)
        (GOOD + "\nFin.", 3.0, 2.0),
        # text between </think> and <SOLUTION> is allowed
        ("<think>a</think> luego <SOLUTION>b</SOLUTION>", 3.0, 2.0),
        # tags repeated: the pattern still matches, the approximate score drops
        ("<think>a</think><think>b</think><SOLUTION>c</SOLUTION>", 3.0, 0.0),
        ("<think>a</think><SOLUTION>b</SOLUTION><SOLUTION>c</SOLUTION>", 3.0, 0.0),
        # tags missing
        ("<think>a</think>", 0.0, 0.0),
        ("<SOLUTION>b</SOLUTION>", 0.0, 0.0),
        ("sin formato", 0.0, -2.0),
        # wrong order: every tag once, so approx is full, but no format
        ("<SOLUTION>b</SOLUTION><think>a</think>", 0.0, 2.0),
        # an empty solution or an empty thought does not match (.+?)
        ("<think>a</think><SOLUTION></SOLUTION>", 0.0, 2.0),
        ("<think></think><SOLUTION>b</SOLUTION>", 0.0, 2.0),
        # a solution of whitespace is not empty to the pattern
        ("<think>a</think><SOLUTION> </SOLUTION>", 3.0, 2.0),
        # tags are case-sensitive
        ("<think>a</think><solution>b</solution>", 0.0, 0.0),
    ],
)
def test_format_rewards(text: str, exact: float, approx: float) -> None:
    for shape in (text, chat(text)):  # both completion shapes give the same score
        assert match_format_exactly([shape]) == [exact]
        assert match_format_approximately([shape]) == [approx]


def test_only_the_first_message_is_read() -> None:
    two = [{"role": "assistant", "content": "nada"}, {"role": "assistant", "content": GOOD}]
    assert match_format_exactly([two]) == [0.0]


@pytest.mark.parametrize(
    ("solution", "answer", "expected"),
    [
        ("Un perro negro", "un perro negro", 3.0),
        # upper case is folded on both sides
        ("UN PERRO NEGRO", "Un Perro Negro", 3.0),
        # punctuation is part of a word: 'negro.' is not 'negro'
        ("un perro negro", "un perro negro.", 2.0),
        # repeated words count once (sets), extra words in the guess cost nothing
        ("perro perro perro y gato", "perro gato", 3.0),
        # a share of the reference's words
        ("un gato", "un perro negro", 1.0),
        # an answer with no words scores 0, not a division by zero
        ("algo", "", 0.0),
        ("algo", " \n\t", 0.0),
        # whitespace inside the solution is stripped before splitting
        ("  un   perro \n", "un perro", 3.0),
    ],
)
def test_text_similarity(solution: str, answer: str, expected: float) -> None:
    text = f"<think>pienso</think><SOLUTION>{solution}</SOLUTION>"
    for shape in (text, chat(text)):
        assert check_text_similarity([shape], answer=[answer]) == [pytest.approx(expected)]


def test_similarity_needs_the_format() -> None:
    # the right words outside the format earn nothing
    assert check_text_similarity(["un perro negro"], answer=["un perro negro"]) == [0.0]
    assert check_text_similarity(["<SOLUTION>un perro</SOLUTION>"], answer=["un perro"]) == [0.0]


def test_repeated_solution_tags_run_to_the_last_one() -> None:
    # The pattern is anchored at the end, so the lazy group stretches to the last
    # </SOLUTION>: the source's behaviour, kept. The tags become part of a "word".
    text = "<think>a</think><SOLUTION>gato</SOLUTION><SOLUTION>perro</SOLUTION>"
    assert extract_solution(text) == "gato</SOLUTION><SOLUTION>perro"
    assert check_text_similarity([text], answer=["perro"]) == [0.0]
    assert check_text_similarity([text], answer=["gato</solution><solution>perro"]) == [3.0]


def test_rewards_take_trls_extra_arguments() -> None:
    extra = {"prompts": ["p"], "trainer_state": None, "pais": ["Chile"], "log_metric": print}
    assert match_format_exactly([GOOD], **extra) == [3.0]
    assert check_text_similarity([GOOD], answer=["un perro negro que cuida."], **extra) == [
        pytest.approx(3.0)
    ]


def test_rewards_are_chosen_by_name() -> None:
    assert resolve_reward("match_format_exactly") is match_format_exactly
    assert resolve_reward("semillero.rewards:check_text_similarity") is check_text_similarity
    with pytest.raises(ValueError, match="Did you mean 'match_format_exactly'"):
        resolve_reward("match_format_exact")
    with pytest.raises(ValueError, match="cannot be imported"):
        resolve_reward("semillero.rewards:nope")


def test_unknown_reward_in_config_is_one_clear_error() -> None:
    from semillero.config.compose import compose, validate

    cfg = compose(["experiment=iberotales_grpo", "scale=tiny", "method.rewards=[match_formt]"])
    with pytest.raises(ConfigError, match=r"unknown reward 'match_formt'.*Rewards: "):
        validate(cfg)


def test_a_reward_that_cannot_take_trls_keywords_is_a_config_error() -> None:
    from semillero.config.compose import compose, validate
    from semillero.errors import ConfigError

    study = ["experiment=iberotales_grpo", "scale=tiny"]
    with pytest.raises(ConfigError, match=r"reward 'json:dumps' cannot take .* asks for 'obj'"):
        validate(compose([*study, "method.rewards=[json:dumps]"]))
    with pytest.raises(ConfigError, match="reward 'operator:add' cannot take"):  # positional only
        validate(compose([*study, "method.rewards=[operator:add]"]))
    ok = "tests.helpers.rewards:answer_length"  # asks for `answer`, a column: accepted
    assert validate(compose([*study, f"method.rewards=[{ok}]"])).method.rewards == [ok]
