"""Shared fixtures: one tiny model per supported family (see tiny.py); failing a test when a model loads."""

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


@pytest.fixture
def no_model_load(monkeypatch):
    """Fail the test if any model's weights are loaded (a bad input must be refused before that)."""

    def load(*args, **kwargs):
        raise AssertionError("the model was loaded before the bad input was refused")

    monkeypatch.setattr("vtome.commands.modelspec.ModelSpec.load", load)
    monkeypatch.setattr("vtome.commands.modelspec.load_model", load)
    monkeypatch.setattr("vtome.models.load_model", load)
