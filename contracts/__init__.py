"""flopex contracts: what is traded.

The public API::

    from contracts import load_products, listed_contracts, BusinessCalendar
    products = load_products()                      # shipped specs, keyed by code
    for c in listed_contracts(products, date(2026, 11, 25)):
        print(c.symbol, c.instrument_id, c.last_trading_day)

Prices are int ticks and money int minor units; ``contracts.units`` converts.
"""

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
