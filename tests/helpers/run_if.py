"""Skip markers with a reason, in the spirit of lightning-hydra-template's RunIf."""

from __future__ import annotations

import importlib.util

import pytest
import torch

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
requires_bitsandbytes = pytest.mark.skipif(
    importlib.util.find_spec("bitsandbytes") is None, reason="needs bitsandbytes"
)
