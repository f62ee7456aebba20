"""Patching: one shared mechanism (family.py, state.py), one small file per model family (registry.py lists
them), and the public functions (core.py)."""

from vtome.patch.core import info, patch, unpatch
from vtome.patch.registry import SUPPORTED, find_family

__all__ = ["patch", "unpatch", "info", "SUPPORTED", "find_family"]
