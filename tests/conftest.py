"""Suite-wide fixtures."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _collect_after_slow_tests(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a ``slow`` test, run a full cycle collection.

    The slow suites build large engines (1 M-order books, 60 MB price-level arrays) that
    end up in reference cycles; CPython's full collection runs rarely when millions of
    objects are alive, so without this the garbage of one slow test outlives it and the
    next test's adds up. The default suite is left alone: a collection per test would cost
    more than it saves there.
    """
    yield
    if request.node.get_closest_marker("slow") is not None:
        gc.collect()
