"""Fixed-point conversions: the one place decimal strings become integers and back.

Rules (also in ``docs/contracts.md``):

* Prices travel as **int64 ticks**: ``price = ticks * tick_size``. Parsing a price that is
  not on the tick grid is an error unless a rounding mode is asked for explicitly.
* Money travels as **int64 minor units** of its currency (cents for USD, scale 2).
* Index values travel as **int64 at a fixed decimal scale** (``INDEX_SCALE`` = 6 places,
  i.e. micro-dollars), see ``docs/index-methodology.md``.
* Every conversion is exact: values go through :class:`decimal.Decimal` built from the
  *string* (never a float), and integer division uses the explicit rounding rules below.
* Rounding modes: ``"half_even"`` (banker's rounding, the default for averages such as
  final settlement prices and index fixings), ``"half_up"`` (ties away from zero),
  ``"down"`` (towards zero), ``"floor"``, ``"ceiling"``, and ``"exact"`` (raise if a
  remainder is left).

Nothing else in the project parses or formats prices or money by hand.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Literal

from contracts.errors import FlopexError

RoundingMode = Literal["exact", "half_even", "half_up", "down", "floor", "ceiling"]

#: Decimal places of index values (fixings): int64 in millionths of the quote currency.
INDEX_SCALE = 6

_DECIMAL_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")


def parse_decimal(text: str | int | Decimal, what: str = "value") -> Decimal:
    """Parse a plain decimal string (no exponent, no float) into a :class:`Decimal`.

    Accepts ``int`` and ``Decimal`` unchanged; refuses ``float`` (binary floats cannot
    hold prices exactly) and strings such as ``"1e3"``, ``"NaN"``, ``""``.
    """
    if isinstance(text, bool):
        raise FlopexError(f"{what}: expected a decimal number, got {text!r}")
    if isinstance(text, int):
        return Decimal(text)
    if isinstance(text, Decimal):
        if not text.is_finite():
            raise FlopexError(f"{what}: expected a finite decimal, got {text}")
        return text
    if isinstance(text, float):
        raise FlopexError(f"{what}: write decimals as strings, not floats ({text!r})")
    if not isinstance(text, str):
        raise FlopexError(f"{what}: expected a decimal string, got {type(text).__name__}")
    s = text.strip().replace("_", "")
    if not _DECIMAL_RE.match(s):
        raise FlopexError(f"{what}: {text!r} is not a decimal number")
    try:
        return Decimal(s)
    except InvalidOperation as exc:  # pragma: no cover - regex guards this
        raise FlopexError(f"{what}: {text!r} is not a decimal number") from exc


def div_round(num: int, den: int, mode: RoundingMode = "half_even") -> int:
    """Integer ``num / den`` rounded by ``mode``; exact for all int sizes.

    ``den`` must be non-zero. ``"exact"`` raises :class:`ValueError` on a remainder.
    """
    if den == 0:
        raise ZeroDivisionError("div_round: zero denominator")
    if den < 0:
        num, den = -num, -den
    q, r = divmod(num, den)  # floor division: 0 <= r < den
    if r == 0:
        return q
    if mode == "floor":
        return q
    if mode == "ceiling":
        return q + 1
    if mode == "down":
        return q if num >= 0 else q + 1
    if mode == "exact":
        raise ValueError(f"{num}/{den} is not exact")
    twice = 2 * r
    if twice < den:
        return q
    if twice > den:
        return q + 1
    # exact tie between q and q + 1
    if mode == "half_up":  # away from zero
        return q + 1 if num >= 0 else q
    if mode == "half_even":
        return q if q % 2 == 0 else q + 1
    raise ValueError(f"unknown rounding mode {mode!r}")


def decimal_to_scaled(
    value: str | int | Decimal, scale: int, mode: RoundingMode = "exact", what: str = "value"
) -> int:
    """Decimal -> integer count of ``10**-scale`` units, e.g. ``("12.34", 2) -> 1234``.

    With ``mode="exact"`` a value with more than ``scale`` decimal places is an error.
    """
    d = parse_decimal(value, what)
    sign, digits, exp = d.as_tuple()
    n = int("".join(map(str, digits)) or "0")
    if sign:
        n = -n
    shift = int(exp) + scale
    if shift >= 0:
        return n * 10**shift
    try:
        return div_round(n, 10**-shift, mode)
    except ValueError:
        raise FlopexError(f"{what}: {value} has more than {scale} decimal places") from None


def scaled_to_decimal_str(n: int, scale: int) -> str:
    """Integer count of ``10**-scale`` units -> canonical decimal string with ``scale`` places."""
    n = int(n)
    if scale <= 0:
        return str(n * 10**-scale)
    sign = "-" if n < 0 else ""
    q, r = divmod(abs(n), 10**scale)
    return f"{sign}{q}.{r:0{scale}d}"


def decimal_places(value: str | Decimal) -> int:
    """Number of decimal places a decimal needs (``"0.005" -> 3``, ``"5" -> 0``)."""
    exp = parse_decimal(value).normalize().as_tuple().exponent
    return max(0, -int(exp))


def price_to_ticks(
    price: str | int | Decimal, tick_size: str | Decimal, mode: RoundingMode = "exact"
) -> int:
    """Price (currency per unit) -> int ticks. Off-grid prices raise unless ``mode`` rounds.

    ``price_to_ticks("2.345", "0.005") == 469``.
    """
    p = parse_decimal(price, "price")
    t = parse_decimal(tick_size, "tick size")
    if t <= 0:
        raise FlopexError(f"tick size must be positive, got {tick_size}")
    places = max(decimal_places(p), decimal_places(t))
    pn = decimal_to_scaled(p, places, what="price")
    tn = decimal_to_scaled(t, places, what="tick size")
    try:
        return div_round(pn, tn, mode)
    except ValueError:
        raise FlopexError(f"price {price} is not a multiple of the tick size {tick_size}") from None


def ticks_to_price(ticks: int, tick_size: str | Decimal, places: int | None = None) -> str:
    """Int ticks -> canonical price string with the tick size's decimal places (or ``places``)."""
    t = parse_decimal(tick_size, "tick size")
    scale = decimal_places(t) if places is None else places
    tn = decimal_to_scaled(t, scale, what="tick size")
    return scaled_to_decimal_str(int(ticks) * tn, scale)


def money_to_minor(amount: str | int | Decimal, minor_digits: int = 2) -> int:
    """Money string -> int minor units (``"12.34" -> 1234`` for USD). Exact or error."""
    return decimal_to_scaled(amount, minor_digits, what="amount")


def minor_to_money(minor: int, minor_digits: int = 2) -> str:
    """Int minor units -> money string (``1234 -> "12.34"``)."""
    return scaled_to_decimal_str(minor, minor_digits)


def index_to_scaled(value: str | Decimal, mode: RoundingMode = "half_even") -> int:
    """Index/quote value string -> int at :data:`INDEX_SCALE` places, rounded by ``mode``."""
    return decimal_to_scaled(value, INDEX_SCALE, mode, what="index value")


def scaled_to_index(n: int) -> str:
    """Int index value at :data:`INDEX_SCALE` -> decimal string."""
    return scaled_to_decimal_str(n, INDEX_SCALE)


def scaled_to_ticks(
    n: int, scale: int, tick_size: str | Decimal, mode: RoundingMode = "half_even"
) -> int:
    """A value held as int at ``scale`` places -> int ticks, rounded by ``mode``.

    Used to turn index values (at :data:`INDEX_SCALE`) into prices on the tick grid.
    """
    t = parse_decimal(tick_size, "tick size")
    places = max(scale, decimal_places(t))
    num = int(n) * 10 ** (places - scale)
    tn = decimal_to_scaled(t, places, what="tick size")
    return div_round(num, tn, mode)


def format_thousands(minor: int, minor_digits: int = 2) -> str:
    """Money for humans: ``123456789 -> "1,234,567.89"``."""
    s = minor_to_money(minor, minor_digits)
    sign = "-" if s.startswith("-") else ""
    s = s.lstrip("-")
    whole, _, frac = s.partition(".")
    whole = f"{int(whole):,}"
    return f"{sign}{whole}.{frac}" if frac else f"{sign}{whole}"
