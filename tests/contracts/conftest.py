"""Fixtures for spec tests: the shipped H100 spec as text and as a mutable dict."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from contracts.registry import _ExactLoader, shipped_spec_paths


@pytest.fixture(scope="session")
def h100_path() -> Path:
    return next(p for p in shipped_spec_paths() if p.name == "h100.yaml")


@pytest.fixture
def h100_text(h100_path: Path) -> str:
    return h100_path.read_text()


@pytest.fixture
def h100_data(h100_text: str) -> dict:
    return copy.deepcopy(yaml.load(h100_text, Loader=_ExactLoader))
