"""Business days and the listing calendar.

A business day is a weekday that is not in the holiday list
(``contracts/holidays/flopex.yaml`` by default, or any YAML file of the same shape).

Listing rules (documented in ``docs/contracts.md``):

* **Last trading day (LTD)** of contract month M: the last business day of M, moved back
  ``last_trading_day.offset_business_days`` business days.
* **Final settlement date**: LTD + ``final_settlement.offset_business_days`` business days.
* **Fixing days**: the business days of M; the final settlement price is the average of the
  index fixings on those days (``docs/index-methodology.md``).
* **Listing cycle** of N consecutive months: on any date D the listed contracts are the N
  months starting with the earliest month whose LTD is on or after D. Month M is first
  listed (its **first trading day**) on the business day after the LTD of month M - N, so
  exactly N months are listed on every business day.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path

import yaml

from contracts.errors import FlopexError
from contracts.spec import ProductSpec
from contracts.symbols import instrument_id, make_symbol, parse_symbol, split_instrument_id


def parse_date(text: str, what: str = "date") -> dt.date:
    """``"2026-11-25"`` -> date; FlopexError naming ``what`` otherwise."""
    if isinstance(text, dt.date):
        return text
    try:
        return dt.date.fromisoformat(str(text).strip())
    except ValueError:
        raise FlopexError(f"{what}: {text!r} is not a date (YYYY-MM-DD)") from None


@dataclass(frozen=True)
class BusinessCalendar:
    """Weekdays minus holidays. All methods are O(days spanned)."""

    holidays: frozenset[dt.date] = frozenset()
    name: str = "custom"

    @classmethod
    def from_file(cls, path: str | Path) -> BusinessCalendar:
        """Load ``{name: ..., holidays: [{date: 'YYYY-MM-DD', name: ...} | 'YYYY-MM-DD']}``."""
        p = Path(path)
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FlopexError(f"{p}: no such file") from None
        except yaml.YAMLError as exc:
            raise FlopexError(f"{p}: not valid YAML: {exc}".splitlines()[0]) from None
        if not isinstance(data, dict) or not isinstance(data.get("holidays"), list):
            raise FlopexError(f"{p}: holidays: expected a list of dates")
        days = set()
        for i, item in enumerate(data["holidays"]):
            raw = item.get("date") if isinstance(item, dict) else item
            days.add(parse_date(raw, f"{p}: holidays.{i}.date"))
        return cls(frozenset(days), str(data.get("name", p.stem)))

    @classmethod
    def default(cls) -> BusinessCalendar:
        """The shipped flopex holiday calendar."""
        path = resources.files("contracts") / "holidays" / "flopex.yaml"
        return _default_calendar(str(path))

    def is_business_day(self, day: dt.date) -> bool:
        """True on weekdays that are not holidays."""
        return day.weekday() < 5 and day not in self.holidays

    def add_business_days(self, day: dt.date, n: int) -> dt.date:
        """Move ``n`` business days forward (n > 0) or back (n < 0); n = 0 returns ``day``."""
        step = 1 if n >= 0 else -1
        d = day
        for _ in range(abs(n)):
            d += dt.timedelta(days=step)
            while not self.is_business_day(d):
                d += dt.timedelta(days=step)
        return d

    def next_business_day(self, day: dt.date) -> dt.date:
        """The first business day strictly after ``day``."""
        return self.add_business_days(day, 1)

    def previous_business_day(self, day: dt.date) -> dt.date:
        """The last business day strictly before ``day``."""
        return self.add_business_days(day, -1)

    def business_days(self, start: dt.date, end: dt.date) -> list[dt.date]:
        """Business days in ``[start, end]`` inclusive, ascending."""
        out = []
        d = start
        while d <= end:
            if self.is_business_day(d):
                out.append(d)
            d += dt.timedelta(days=1)
        return out

    def last_business_day_of_month(self, year: int, month: int) -> dt.date:
        """The last business day of the month."""
        d = _month_end(year, month)
        while not self.is_business_day(d):
            d -= dt.timedelta(days=1)
        return d


_DEFAULT_CACHE: dict[str, BusinessCalendar] = {}


def _default_calendar(path: str) -> BusinessCalendar:
    if path not in _DEFAULT_CACHE:
        _DEFAULT_CACHE[path] = BusinessCalendar.from_file(path)
    return _DEFAULT_CACHE[path]


def _month_end(year: int, month: int) -> dt.date:
    if month == 12:
        return dt.date(year, 12, 31)
    return dt.date(year, month + 1, 1) - dt.timedelta(days=1)


def _add_months(year: int, month: int, n: int) -> tuple[int, int]:
    k = year * 12 + (month - 1) + n
    return k // 12, k % 12 + 1


@dataclass(frozen=True)
class Contract:
    """One listed contract month of a product, with its key dates."""

    product: ProductSpec
    year: int
    month: int
    calendar: BusinessCalendar = field(repr=False, compare=False)

    @property
    def symbol(self) -> str:
        return make_symbol(self.product.code, self.year, self.month)

    @property
    def instrument_id(self) -> int:
        return instrument_id(self.product.product_id, self.year, self.month)

    @cached_property
    def last_trading_day(self) -> dt.date:
        last = self.calendar.last_business_day_of_month(self.year, self.month)
        return self.calendar.add_business_days(
            last, -self.product.last_trading_day.offset_business_days
        )

    @cached_property
    def first_trading_day(self) -> dt.date:
        y, m = _add_months(self.year, self.month, -self.product.listing.months)
        prior = Contract(self.product, y, m, self.calendar)
        return self.calendar.next_business_day(prior.last_trading_day)

    @cached_property
    def final_settlement_date(self) -> dt.date:
        return self.calendar.add_business_days(
            self.last_trading_day, self.product.final_settlement.offset_business_days
        )

    @cached_property
    def fixing_days(self) -> list[dt.date]:
        """Business days of the contract month: the index fixings averaged at expiry."""
        return self.calendar.business_days(
            dt.date(self.year, self.month, 1), _month_end(self.year, self.month)
        )

    def is_trading_day(self, day: dt.date) -> bool:
        """True if the contract trades on ``day`` (listed, not expired, business day)."""
        return (
            self.first_trading_day <= day <= self.last_trading_day
            and self.calendar.is_business_day(day)
        )

    def is_spot_month(self, day: dt.date) -> bool:
        """True in the contract's delivery month (spot-month position limits apply)."""
        return (day.year, day.month) == (self.year, self.month)

    def as_dict(self) -> dict:
        """JSON-friendly summary."""
        return {
            "symbol": self.symbol,
            "instrument_id": self.instrument_id,
            "product": self.product.code,
            "contract_month": f"{self.year:04d}-{self.month:02d}",
            "first_trading_day": self.first_trading_day.isoformat(),
            "last_trading_day": self.last_trading_day.isoformat(),
            "final_settlement_date": self.final_settlement_date.isoformat(),
            "fixing_days": len(self.fixing_days),
        }


def contracts_listed(
    product: ProductSpec, on: dt.date, calendar: BusinessCalendar
) -> list[Contract]:
    """The ``listing.months`` contracts of ``product`` listed on ``on`` (front month first)."""
    c = Contract(product, on.year, on.month, calendar)
    if c.last_trading_day < on:
        y, m = _add_months(on.year, on.month, 1)
        c = Contract(product, y, m, calendar)
    out = []
    for k in range(product.listing.months):
        y, m = _add_months(c.year, c.month, k)
        out.append(Contract(product, y, m, calendar))
    return out


def listed_contracts(
    products: dict[str, ProductSpec] | Iterable[ProductSpec],
    on: dt.date,
    calendar: BusinessCalendar | None = None,
) -> list[Contract]:
    """All listed contracts on ``on`` across products, by product id then expiry."""
    cal = calendar or BusinessCalendar.default()
    specs = products.values() if isinstance(products, dict) else products
    out: list[Contract] = []
    for spec in sorted(specs, key=lambda s: s.product_id):
        out.extend(contracts_listed(spec, on, cal))
    return out


def contract_for_symbol(
    symbol: str, products: dict[str, ProductSpec], calendar: BusinessCalendar | None = None
) -> Contract:
    """The contract a symbol names (listed or not); FlopexError on an unknown product."""
    code, year, month = parse_symbol(symbol)
    if code not in products:
        raise FlopexError(f"symbol {symbol!r}: unknown product code {code!r}")
    return Contract(products[code], year, month, calendar or BusinessCalendar.default())


def contract_for_instrument_id(
    iid: int, products: dict[str, ProductSpec], calendar: BusinessCalendar | None = None
) -> Contract:
    """The contract an instrument id names; FlopexError on an unknown product id."""
    pid, year, month = split_instrument_id(iid)
    for spec in products.values():
        if spec.product_id == pid:
            return Contract(spec, year, month, calendar or BusinessCalendar.default())
    raise FlopexError(f"instrument id {iid}: unknown product id {pid}")


def iter_business_days(
    start: dt.date, end: dt.date, calendar: BusinessCalendar
) -> Iterator[dt.date]:
    """Business days in ``[start, end]``, lazily."""
    yield from calendar.business_days(start, end)
