"""Contract symbols and instrument ids.

Symbol convention (CME style, two-digit year): product code + month code + year,
e.g. ``H100Z26`` is the December 2026 H100 GPU-hour contract.

Instrument ids are stable uint32 numbers used on the wire and in the engine:
``product_id * 10000 + (year % 100) * 100 + month`` — ``H100Z26`` (product 1) is ``12612``.
They never change across trading days, so a journal or a client can hold them.
"""

from __future__ import annotations

import re

from contracts.errors import FlopexError

#: CME month codes, January first.
MONTH_CODES = "FGHJKMNQUVXZ"

_SYMBOL_RE = re.compile(r"^([A-Z][A-Z0-9]{0,5}?)([FGHJKMNQUVXZ])(\d{2})$")


def month_code(month: int) -> str:
    """1..12 -> CME month letter (``12 -> "Z"``)."""
    if not 1 <= month <= 12:
        raise FlopexError(f"month must be 1..12, got {month}")
    return MONTH_CODES[month - 1]


def make_symbol(code: str, year: int, month: int) -> str:
    """``("H100", 2026, 12) -> "H100Z26"``."""
    return f"{code}{month_code(month)}{year % 100:02d}"


def parse_symbol(symbol: str) -> tuple[str, int, int]:
    """``"H100Z26" -> ("H100", 2026, 12)``; raises FlopexError naming the symbol if malformed."""
    m = _SYMBOL_RE.match(symbol.strip().upper()) if isinstance(symbol, str) else None
    if not m:
        raise FlopexError(
            f"symbol {symbol!r} is not CODE + month code (F..Z) + 2-digit year, e.g. H100Z26"
        )
    code, letter, yy = m.groups()
    return code, 2000 + int(yy), MONTH_CODES.index(letter) + 1


def instrument_id(product_id: int, year: int, month: int) -> int:
    """Stable instrument id: ``product_id * 10000 + (year % 100) * 100 + month``."""
    if not 1 <= product_id <= 429495:
        raise FlopexError(f"product_id must be 1..429495, got {product_id}")
    return product_id * 10000 + (year % 100) * 100 + month


def split_instrument_id(iid: int) -> tuple[int, int, int]:
    """Inverse of :func:`instrument_id`: ``12612 -> (1, 2026, 12)``."""
    product_id, rest = divmod(int(iid), 10000)
    yy, month = divmod(rest, 100)
    if product_id < 1 or not 1 <= month <= 12:
        raise FlopexError(f"instrument id {iid} is not a flopex instrument id")
    return product_id, 2000 + yy, month
