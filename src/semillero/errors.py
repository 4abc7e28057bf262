"""The errors semillero shows to users: each says what is wrong and how to fix it."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class SemilleroError(Exception):
    """A problem in the user's config, data or environment, with its fix in the message."""


class ConfigError(SemilleroError):
    """The composed config is invalid (unknown key, bad value, impossible combination)."""


class DataError(SemilleroError):
    """A data file is unreadable or does not have the schema the config expects."""


class ModelLoadError(SemilleroError):
    """A model cannot be found or built."""


def did_you_mean(value: str, options: Iterable[str]) -> str:
    """Returns ' Did you mean X?' for the closest option, or '' when none is close.

    >>> did_you_mean("gtp2-small-es", ["gpt2-small-es", "distilgpt2"])
    " Did you mean 'gpt2-small-es'?"
    >>> did_you_mean("zzz", ["gpt2-small-es"])
    ''
    """
    close = difflib.get_close_matches(value, list(options), n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""
