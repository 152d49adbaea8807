"""Fixtures: every scenario test runs against both books (kernel facade and reference)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from exchange.engine.book import MatchingEngine
from exchange.engine.config import InstrumentConfig
from exchange.engine.reference import ReferenceBook

from .helpers import FIFO_CFG, PRO_RATA_CFG

BookFactory = Callable[..., object]


def _make(kind: str, configs: Sequence[InstrumentConfig], max_orders: int = 64) -> object:
    if kind == "kernel":
        return MatchingEngine(configs, max_orders=max_orders, event_capacity=32)
    return ReferenceBook(configs, max_orders=max_orders)


@pytest.fixture(params=["kernel", "reference"])
def make_book(request: pytest.FixtureRequest) -> BookFactory:
    """Factory ``make_book(configs=..., max_orders=...)`` for the parametrised book kind."""

    def factory(
        configs: Sequence[InstrumentConfig] = (FIFO_CFG, PRO_RATA_CFG), max_orders: int = 64
    ) -> object:
        return _make(request.param, configs, max_orders)

    return factory


@pytest.fixture
def book(make_book: BookFactory) -> object:
    """A FIFO instrument (IID) and a pro-rata one (IID2), 64 order slots."""
    b = make_book()
    yield b
    b.validate()  # every scenario ends with a consistent book
