"""Perplexity from a mean token cross-entropy."""

from __future__ import annotations

import math


def perplexity(loss: float) -> float:
    """exp(loss), the seed's perplexity; inf where exp would overflow.

    >>> round(perplexity(4.21), 2)
    67.36
    >>> perplexity(1000.0)
    inf
    """
    return math.exp(loss) if loss < 700 else math.inf
