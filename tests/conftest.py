"""Shared fixtures: one tiny model per supported family (see tiny.py)."""

from __future__ import annotations

import pytest
import torch

from tiny import BUILDERS


@pytest.fixture(params=list(BUILDERS))
def family(request) -> str:
    return request.param


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
