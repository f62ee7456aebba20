"""Patching: one shared mechanism (core.py, state.py) and one small file per model family."""

from vtome.patch.core import SUPPORTED, info, patch, unpatch

__all__ = ["patch", "unpatch", "info", "SUPPORTED"]
