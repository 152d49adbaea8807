"""Product specifications: the pydantic models behind ``contracts/specs/*.yaml``.

A :class:`ProductSpec` is as complete as a CME contract specification page: what one
contract is (unit, quotation, tick), when and how it trades (hours, listing cycle, last
trading day, matching, self-match prevention, limits), how it settles (daily settlement
parameters, final cash settlement against the index average) and how it is margined.

Decimals in specs are written as strings or plain YAML numbers; the loader in
:mod:`contracts.registry` never lets YAML turn them into binary floats. Every cross-field
rule (tick divides the price band, limits and protection; tick value is a whole number
of minor units; trading sessions do not overlap) is checked here, so a spec that loads
is a spec the exchange and clearing can use without further checks.
"""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from contracts.units import (
    RoundingMode,
    decimal_places,
    decimal_to_scaled,
    div_round,
    parse_decimal,
    price_to_ticks,
)

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _to_decimal(value: object) -> Decimal:
    try:
        return parse_decimal(value)  # type: ignore[arg-type]
    except Exception as exc:  # FlopexError -> pydantic error with our message
        raise ValueError(str(exc).removeprefix("value: ")) from None


Dec = Annotated[Decimal, BeforeValidator(_to_decimal)]
PositiveDec = Annotated[Decimal, BeforeValidator(_to_decimal), Field(gt=0)]
NonNegDec = Annotated[Decimal, BeforeValidator(_to_decimal), Field(ge=0)]


def _hhmm(value: object) -> dt.time:
    if isinstance(value, dt.time):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        # YAML 1.1 reads 08:30 as sexagesimal 510; refuse the ambiguity kindly.
        raise ValueError("write times as quoted strings 'HH:MM'")
    if not isinstance(value, str):
        raise ValueError(f"expected 'HH:MM', got {value!r}")
    try:
        h, m = value.strip().split(":")
        return dt.time(int(h), int(m))
    except ValueError:
        raise ValueError(f"expected 'HH:MM', got {value!r}") from None


HHMM = Annotated[dt.time, BeforeValidator(_hhmm)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class PriceBand(_Model):
    """The widest prices the venue will ever accept (the engine's ladder spans it)."""

    min: PositiveDec
    max: PositiveDec

    @model_validator(mode="after")
    def _ordered(self) -> PriceBand:
        if self.min >= self.max:
            raise ValueError(f"min {self.min} must be below max {self.max}")
        return self


class Listing(_Model):
    """Listing cycle: ``months`` consecutive contract months are listed at any time."""

    cycle: Literal["consecutive_months"] = "consecutive_months"
    months: int = Field(ge=1, le=60)


class SymbolConvention(_Model):
    """Symbol = product code + CME month code + 2-digit year (``H100Z26``)."""

    convention: Literal["code_month_year2"] = "code_month_year2"
    example: str | None = None


class TradingSession(_Model):
    """One trading session on the given weekdays, ``open`` < ``close`` in local time."""

    days: list[Literal["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]] = Field(min_length=1)
    open: HHMM
    close: HHMM

    @model_validator(mode="after")
    def _open_before_close(self) -> TradingSession:
        if self.open >= self.close:
            raise ValueError(f"open {self.open:%H:%M} must be before close {self.close:%H:%M}")
        if len(set(self.days)) != len(self.days):
            raise ValueError("a weekday is listed twice")
        return self


class TradingHours(_Model):
    """Trading hours in a named time zone; the pre-open phase precedes each session."""

    timezone: str
    pre_open_minutes: int = Field(default=30, ge=0, le=240)
    sessions: list[TradingSession] = Field(min_length=1)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}") from None
        return v

    @model_validator(mode="after")
    def _no_overlap(self) -> TradingHours:
        for day in WEEKDAYS:
            spans = sorted((s.open, s.close) for s in self.sessions if day in s.days)
            for (o1, c1), (o2, _c2) in itertools.pairwise(spans):
                if o2 < c1:
                    raise ValueError(
                        f"sessions overlap on {day}: {o1:%H:%M}-{c1:%H:%M} and {o2:%H:%M}"
                    )
        return self

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def sessions_on(self, day: dt.date) -> list[tuple[dt.datetime, dt.datetime]]:
        """(open, close) as aware UTC datetimes for the sessions on ``day`` (local date)."""
        name = WEEKDAYS[day.weekday()]
        out = []
        for s in sorted(self.sessions, key=lambda s: s.open):
            if name in s.days:
                o = dt.datetime.combine(day, s.open, self.tz).astimezone(dt.UTC)
                c = dt.datetime.combine(day, s.close, self.tz).astimezone(dt.UTC)
                out.append((o, c))
        return out

    def close_on(self, day: dt.date) -> dt.datetime | None:
        """The last close on ``day`` as an aware UTC datetime, or None if no session."""
        spans = self.sessions_on(day)
        return spans[-1][1] if spans else None


class LastTradingDay(_Model):
    """Trading terminates ``offset_business_days`` before the last business day of the month."""

    rule: Literal["last_business_day_of_month"] = "last_business_day_of_month"
    offset_business_days: int = Field(default=0, ge=0, le=15)


class FinalSettlement(_Model):
    """Cash settlement against the arithmetic average of the month's daily index fixings."""

    method: Literal["cash"] = "cash"
    price: Literal["average_of_daily_fixings"] = "average_of_daily_fixings"
    rounding: Literal["half_even", "half_up"] = "half_even"
    offset_business_days: int = Field(
        default=0, ge=0, le=5, description="final settlement date = LTD + this many business days"
    )


class DailySettlement(_Model):
    """Parameters of the daily settlement-price waterfall (see docs/clearing.md)."""

    closing_window_seconds: int = Field(gt=0, le=3600)
    min_volume: int = Field(ge=1)
    max_spread_ticks: int = Field(ge=1)


class PriceLimits(_Model):
    """Daily price limits around the previous settlement price.

    ``kind: percent`` — each tier is a percentage of the reference, converted to ticks by
    rounding *down* to the tick grid (never wider than stated). ``kind: fixed`` — each tier
    is a price distance that must be a whole number of ticks. Tiers widen strictly.
    """

    kind: Literal["percent", "fixed"]
    tiers: list[PositiveDec] = Field(min_length=1, max_length=5)

    @field_validator("tiers")
    @classmethod
    def _increasing(cls, v: list[Decimal]) -> list[Decimal]:
        if any(b <= a for a, b in itertools.pairwise(v)):
            raise ValueError("tiers must strictly increase")
        return v


class PositionLimits(_Model):
    """Maximum net position, in contracts, in the spot month and across all months."""

    spot_month: int = Field(ge=1)
    all_months: int = Field(ge=1)

    @model_validator(mode="after")
    def _spot_within_all(self) -> PositionLimits:
        if self.spot_month > self.all_months:
            raise ValueError("spot_month limit exceeds all_months limit")
        return self


class MarginParams(_Model):
    """Scenario-margin parameters (SPAN-style): price scan range, spread charge, credits."""

    scan_range_pct: PositiveDec = Field(description="price move scanned, % of settlement")
    volatility_scan_pct: NonNegDec = Decimal(0)
    calendar_spread_charge: NonNegDec = Field(description="currency per spread pair")
    credit_group: str | None = None
    inter_product_credit_pct: NonNegDec = Decimal(0)

    @field_validator("scan_range_pct", "inter_product_credit_pct")
    @classmethod
    def _pct(cls, v: Decimal) -> Decimal:
        if v > 100:
            raise ValueError("a percentage must be at most 100")
        return v


class ProductSpec(_Model):
    """One futures product (all its contract months share this spec)."""

    code: str = Field(pattern=r"^[A-Z][A-Z0-9]{1,5}$")
    product_id: int = Field(ge=1, le=9999)
    name: str = Field(min_length=3)
    asset_class: Literal["gpu_compute", "token_index"]
    underlying_index: str = Field(min_length=2)
    contract_unit: int = Field(gt=0)
    unit_of_measure: str
    currency: Literal["USD"]
    currency_minor_digits: int = Field(default=2, ge=0, le=4)
    price_quotation: str
    tick_size: PositiveDec
    min_order_qty: int = Field(ge=1)
    max_order_qty: int = Field(ge=1)
    price_band: PriceBand
    listing: Listing
    symbol: SymbolConvention = SymbolConvention()
    trading_hours: TradingHours
    holiday_calendar: str = "flopex"
    last_trading_day: LastTradingDay = LastTradingDay()
    final_settlement: FinalSettlement = FinalSettlement()
    daily_settlement: DailySettlement
    price_limits: PriceLimits
    position_limits: PositionLimits
    matching_algorithm: Literal["fifo", "pro_rata"]
    self_match_prevention: Literal["cancel_resting", "cancel_incoming", "cancel_both"]
    market_protection: PositiveDec = Field(description="max sweep of a market order, price units")
    margin: MarginParams
    clearing_fee: NonNegDec = Field(
        default=Decimal("0.50"), description="currency per contract per side, charged at clearing"
    )

    @model_validator(mode="after")
    def _consistent(self) -> ProductSpec:
        t = self.tick_size
        if self.min_order_qty > self.max_order_qty:
            raise ValueError(
                f"min_order_qty {self.min_order_qty} exceeds max_order_qty {self.max_order_qty}"
            )

        def on_grid(value: Decimal, field: str) -> None:
            if value % t != 0:
                raise ValueError(f"{field} {value} is not a multiple of tick_size {t}")

        on_grid(self.price_band.min, "price_band.min")
        on_grid(self.price_band.max, "price_band.max")
        on_grid(self.market_protection, "market_protection")
        if self.price_limits.kind == "fixed":
            for i, tier in enumerate(self.price_limits.tiers):
                on_grid(tier, f"price_limits.tiers.{i}")
        value = t * self.contract_unit * (10**self.currency_minor_digits)
        if value != value.to_integral_value():
            raise ValueError(
                f"tick value {t * self.contract_unit} {self.currency} is not a whole number "
                f"of minor units (tick_size x contract_unit)"
            )
        if self.position_limits.spot_month < self.min_order_qty:
            raise ValueError("position_limits.spot_month is below min_order_qty")
        return self

    # ---- derived integers (what the engine and clearing use) -------------------------

    @property
    def price_decimals(self) -> int:
        """Decimal places of a price (those of the tick size)."""
        return decimal_places(self.tick_size)

    @property
    def tick_value_minor(self) -> int:
        """Money per tick per contract, in minor units (cents): tick_size x unit x 10^digits."""
        v = self.tick_size * self.contract_unit * (10**self.currency_minor_digits)
        return int(v)

    @property
    def tick_value(self) -> Decimal:
        """Money per tick per contract, in currency."""
        return self.tick_size * self.contract_unit

    @property
    def price_band_ticks(self) -> tuple[int, int]:
        """(lowest, highest) acceptable price in ticks."""
        return (
            price_to_ticks(self.price_band.min, self.tick_size),
            price_to_ticks(self.price_band.max, self.tick_size),
        )

    @property
    def market_protection_ticks(self) -> int:
        """How far (ticks) a market order may sweep from the best price."""
        return price_to_ticks(self.market_protection, self.tick_size)

    @property
    def clearing_fee_minor(self) -> int:
        """Clearing fee per contract per side, in minor units."""
        return decimal_to_scaled(self.clearing_fee, self.currency_minor_digits, what="clearing_fee")

    @property
    def calendar_spread_charge_minor(self) -> int:
        """Calendar spread charge per spread pair, in minor units."""
        return decimal_to_scaled(self.margin.calendar_spread_charge, self.currency_minor_digits)

    def to_ticks(self, price: str | Decimal, mode: RoundingMode = "exact") -> int:
        """Price string -> ticks (exact unless a rounding ``mode`` is given)."""
        return price_to_ticks(price, self.tick_size, mode)

    def format_price(self, ticks: int) -> str:
        """Ticks -> price string with the tick size's decimal places."""
        from contracts.units import ticks_to_price

        return ticks_to_price(ticks, self.tick_size)

    def limit_ticks(self, reference_ticks: int, tier: int = 0) -> int:
        """Half-width of the daily price limit in ticks around ``reference_ticks``.

        Percent limits round *down* to a whole tick (and are at least one tick); fixed limits
        are exact. ``tier`` indexes :attr:`PriceLimits.tiers` (expanded limits after a halt).
        """
        tiers = self.price_limits.tiers
        tier = min(max(tier, 0), len(tiers) - 1)
        width = tiers[tier]
        if self.price_limits.kind == "fixed":
            return price_to_ticks(width, self.tick_size)
        # reference_ticks * pct / 100, rounded down, at least 1
        pct_scaled = decimal_to_scaled(width, 6)  # percent in millionths
        return max(1, div_round(int(reference_ticks) * pct_scaled, 100 * 10**6, "floor"))

    def limit_band_ticks(self, reference_ticks: int, tier: int = 0) -> tuple[int, int]:
        """(low, high) price limits in ticks, clipped to the product's price band."""
        w = self.limit_ticks(reference_ticks, tier)
        lo, hi = self.price_band_ticks
        return max(lo, reference_ticks - w), min(hi, reference_ticks + w)
