"""Patching: one shared mechanism (family.py, state.py), one small file per model family (registry.py lists
them), and the public functions (core.py)."""

from vtome.patch.core import info, patch, set_prior, unpatch
from vtome.patch.registry import SUPPORTED, find_family

__all__ = ["patch", "unpatch", "info", "set_prior", "SUPPORTED", "find_family"]
