"""Provider quote files: parsing CSV or JSON-lines into exact integer quotes.

A quote is one provider's price for one item at one instant:

* GPU items (``H100``, ``H200``): rental price in USD per GPU-hour;
* token items (``tokens/<model>/input``, ``tokens/<model>/output``): API price in USD per
  million tokens.

CSV files have the header ``timestamp,provider,item,price[,volume]``; JSON-lines files hold
one object per line with the same keys. ``timestamp`` is ISO 8601 with a UTC offset (``Z``
allowed); ``price`` is a decimal (a string, or a JSON number read exactly as a decimal);
``volume`` is an optional non-negative integer (GPU-hours or million tokens traded at that
price). Prices become ints at :data:`contracts.units.INDEX_SCALE` places (half-even beyond).

Every bad line raises :class:`~contracts.errors.FlopexError` naming the file, line and field.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from contracts.errors import FlopexError
from contracts.units import index_to_scaled, scaled_to_index

QUOTE_FIELDS = ("timestamp", "provider", "item", "price", "volume")
_REQUIRED = ("timestamp", "provider", "item", "price")


@dataclass(frozen=True, slots=True)
class Quote:
    """One provider quote; ``price`` is an int at INDEX_SCALE, ``ts`` whole UTC seconds."""

    ts: int
    provider: str
    item: str
    price: int
    volume: int | None = None

    @property
    def when(self) -> dt.datetime:
        """The quote instant as an aware UTC datetime."""
        return dt.datetime.fromtimestamp(self.ts, dt.UTC)

    def to_row(self) -> dict[str, str]:
        """The quote as CSV/JSON fields (decimal strings, ISO timestamp)."""
        return {
            "timestamp": self.when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "provider": self.provider,
            "item": self.item,
            "price": scaled_to_index(self.price),
            "volume": "" if self.volume is None else str(self.volume),
        }


def parse_timestamp(text: object, where: str) -> int:
    """ISO 8601 with offset -> whole UTC seconds since the epoch (sub-seconds truncated)."""
    if not isinstance(text, str) or not text.strip():
        raise FlopexError(f"{where}: timestamp: expected ISO 8601 text, got {text!r}")
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise FlopexError(f"{where}: timestamp: {text!r} is not ISO 8601") from None
    if when.tzinfo is None:
        raise FlopexError(f"{where}: timestamp: {text!r} has no UTC offset (add Z or +00:00)")
    return int(when.timestamp() // 1)


def _parse_record(rec: dict[str, object], where: str) -> Quote:
    for key in _REQUIRED:
        value = rec.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise FlopexError(f"{where}: {key}: missing")
    ts = parse_timestamp(rec["timestamp"], where)
    provider = str(rec["provider"]).strip()
    item = str(rec["item"]).strip()
    raw_price = rec["price"]
    if isinstance(raw_price, Decimal | int) and not isinstance(raw_price, bool):
        raw_price = str(raw_price)
    try:
        price = index_to_scaled(raw_price)  # type: ignore[arg-type]
    except FlopexError as exc:
        raise FlopexError(f"{where}: price: {exc}") from None
    if price <= 0:
        raise FlopexError(f"{where}: price: must be positive, got {raw_price}")
    raw_volume = rec.get("volume")
    volume: int | None = None
    if raw_volume is not None and str(raw_volume).strip() != "":
        text = str(raw_volume).strip()
        if not text.isdigit():
            raise FlopexError(f"{where}: volume: expected a non-negative integer, got {text!r}")
        volume = int(text)
    return Quote(ts, provider, item, price, volume)


def _iter_csv(path: Path, lines: Iterable[str]) -> Iterator[Quote]:
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is None:
        raise FlopexError(f"{path}: empty file (expected header {','.join(QUOTE_FIELDS)})")
    header = [h.strip().lower() for h in header]
    missing = [k for k in _REQUIRED if k not in header]
    if missing:
        raise FlopexError(f"{path}:1: header: missing column {missing[0]!r}")
    for lineno, row in enumerate(reader, start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != len(header):
            raise FlopexError(f"{path}:{lineno}: expected {len(header)} fields, got {len(row)}")
        yield _parse_record(dict(zip(header, row, strict=True)), f"{path}:{lineno}")


def _iter_jsonl(path: Path, lines: Iterable[str]) -> Iterator[Quote]:
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line, parse_float=Decimal)
        except json.JSONDecodeError as exc:
            raise FlopexError(f"{path}:{lineno}: invalid JSON at column {exc.colno}") from None
        if not isinstance(rec, dict):
            raise FlopexError(f"{path}:{lineno}: expected a JSON object")
        yield _parse_record(rec, f"{path}:{lineno}")


def load_quotes(path: str | Path) -> list[Quote]:
    """Read a quote file (``.csv``, or ``.jsonl``/``.json``/``.ndjson`` JSON lines).

    The format is chosen by extension, or by sniffing the first non-blank character
    (``{`` means JSON lines). Returns quotes in file order. O(lines).
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FlopexError(f"{p}: quote file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FlopexError(f"{p}: cannot read quote file ({exc.__class__.__name__})") from None
    lines = text.splitlines()
    first = next((ln.strip() for ln in lines if ln.strip()), "")
    is_json = p.suffix.lower() in (".jsonl", ".json", ".ndjson") or first.startswith("{")
    return list(_iter_jsonl(p, lines) if is_json else _iter_csv(p, lines))


def load_quote_files(paths: Iterable[str | Path]) -> list[Quote]:
    """Concatenate several quote files in the given order."""
    out: list[Quote] = []
    for p in paths:
        out.extend(load_quotes(p))
    return out


def write_quotes_csv(path: str | Path, quotes: Iterable[Quote]) -> None:
    """Write quotes as CSV with the canonical header (decimal strings, ISO timestamps)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(QUOTE_FIELDS), lineterminator="\n")
        writer.writeheader()
        for q in quotes:
            writer.writerow(q.to_row())


def write_quotes_jsonl(path: str | Path, quotes: Iterable[Quote]) -> None:
    """Write quotes as JSON lines (prices as decimal strings; volume omitted when absent)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("w", encoding="utf-8") as fh:
        for q in quotes:
            row: dict[str, object] = dict(q.to_row())
            if q.volume is None:
                del row["volume"]
            else:
                row["volume"] = q.volume
            fh.write(json.dumps(row) + "\n")
