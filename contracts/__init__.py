"""flopex contracts: what is traded.

The public API::

    from contracts import load_products, listed_contracts, BusinessCalendar
    products = load_products()                      # shipped specs, keyed by code
    for c in listed_contracts(products, date(2026, 11, 25)):
        print(c.symbol, c.instrument_id, c.last_trading_day)

Prices are int ticks and money int minor units; ``contracts.units`` converts.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - names for type checkers; loaded lazily below
    from contracts.calendar import (
        BusinessCalendar,
        Contract,
        contract_for_instrument_id,
        contract_for_symbol,
        listed_contracts,
    )
    from contracts.errors import FlopexError
    from contracts.registry import load_products, load_spec_file
    from contracts.spec import ProductSpec

#: public name -> the submodule that defines it. Loaded on first use (PEP 562), so
#: ``from contracts.errors import FlopexError`` (the engine's one import from here) does
#: not pull in pydantic and the spec models: ~0.1 s of the engine's warm start.
_LAZY = {
    "BusinessCalendar": "contracts.calendar",
    "Contract": "contracts.calendar",
    "contract_for_instrument_id": "contracts.calendar",
    "contract_for_symbol": "contracts.calendar",
    "listed_contracts": "contracts.calendar",
    "FlopexError": "contracts.errors",
    "load_products": "contracts.registry",
    "load_spec_file": "contracts.registry",
    "ProductSpec": "contracts.spec",
}


def __getattr__(name: str) -> Any:
    """Import the submodule defining ``name`` on first access (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'contracts' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "BusinessCalendar",
    "Contract",
    "FlopexError",
    "ProductSpec",
    "contract_for_instrument_id",
    "contract_for_symbol",
    "listed_contracts",
    "load_products",
    "load_spec_file",
]
