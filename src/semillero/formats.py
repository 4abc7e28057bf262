"""How an instruction row becomes a prompt and a completion for SFT.

A format is one small function `(row, model_has_chat) -> {"prompt": ..., "completion": ...}`
over the roles `instruction`, `input` (may be empty) and `output`. TRL's SFTTrainer takes
the result as a prompt-completion data set: it appends EOS to a plain-text completion and
renders a conversational one with the tokenizer's chat template. Adding a format means
adding one function to FORMATS.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# The Spanish Alpaca template of the source (studies.md, alpaca_qlora), byte for byte. The
# source ignores `input`; a non-empty input goes in its own section, as in the original
# Alpaca template.
ALPACA_HEADER = (
    "Debajo hay una instrucción que describe una tarea. \n"
    "Escribe una respuesta que complete adecuadamente lo que se pide."
)
ALPACA_PROMPT = ALPACA_HEADER + "\n\n### Instrucción:\n{instruction}\n\n### Respuesta:\n"
ALPACA_PROMPT_WITH_INPUT = (
    ALPACA_HEADER
    + "\n\n### Instrucción:\n{instruction}\n\n### Entrada:\n{input}\n\n### Respuesta:\n"
)

Example = dict[str, Any]
Format = Callable[[Example], Example]


def alpaca_prompt(instruction: str, input: str | None = None) -> str:
    r"""The prompt up to and including `### Respuesta:\n`.

    >>> alpaca_prompt("Di hola.").startswith(ALPACA_HEADER)
    True
    >>> alpaca_prompt("Di hola.", "").endswith("### Instrucción:\nDi hola.\n\n### Respuesta:\n")
    True
    >>> "### Entrada:\nhola\n\n" in alpaca_prompt("Traduce.", "hola")
    True
    """
    if input and input.strip():
        return ALPACA_PROMPT_WITH_INPUT.format(instruction=instruction, input=input)
    return ALPACA_PROMPT.format(instruction=instruction)


def alpaca(row: Example) -> Example:
    """Plain-text prompt and completion; SFTTrainer appends EOS to the completion."""
    return {
        "prompt": alpaca_prompt(row["instruction"], row.get("input")),
        "completion": row["output"],
    }


def chat(row: Example) -> Example:
    """A user turn (instruction, then input when non-empty) and the assistant's answer, for
    the model's own chat template."""
    user = row["instruction"]
    if row.get("input") and row["input"].strip():
        user = f"{user}\n\n{row['input']}"
    return {
        "prompt": [{"role": "user", "content": user}],
        "completion": [{"role": "assistant", "content": row["output"]}],
    }


FORMATS: dict[str, Format] = {"alpaca": alpaca, "chat": chat}


def question_prompt(fmt: str, question: str) -> Example:
    """A bare question in a format, for the contrast test: {"prompt": ...} only."""
    return {"prompt": FORMATS[fmt]({"instruction": question, "input": "", "output": ""})["prompt"]}
