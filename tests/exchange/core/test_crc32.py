"""The core's compiled CRC-32 is zlib's: the journal reader checks records with zlib."""

from __future__ import annotations

import zlib

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.core.kernel import crc32


@settings(deadline=None)  # the first call loads the kernel from the cache
@given(st.binary(max_size=300), st.integers(0, 16), st.integers(0, 0xFFFFFFFF))
def test_crc32_equals_zlib_on_any_slice(data: bytes, start: int, seed: int) -> None:
    buf = np.frombuffer(bytes(start) + data, np.uint8)
    assert crc32(buf, start, len(data), seed) == zlib.crc32(data, seed)
