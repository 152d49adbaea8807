"""Shared helpers for the journal tests: command batches with recognisable contents."""

from __future__ import annotations

import numpy as np

from exchange.engine.abi import COMMAND_DTYPE, CmdType, Side


def make_batch(n: int, start: int = 0, instrument_id: int = 12606, account: int = 1) -> np.ndarray:
    """``n`` NEW limit orders whose ``client_token`` counts up from ``start``."""
    cmds = np.zeros(n, dtype=COMMAND_DTYPE)
    k = np.arange(start, start + n)
    cmds["cmd_type"] = CmdType.NEW
    cmds["client_token"] = np.arange(start, start + n, dtype=np.uint64)
    cmds["timestamp"] = np.arange(start, start + n, dtype=np.int64) * 1000
    cmds["instrument_id"] = instrument_id
    cmds["account"] = account
    cmds["side"] = np.where(k % 2 == 0, Side.BUY, Side.SELL)
    cmds["price"] = 3000 + k % 7
    cmds["qty"] = 1 + k % 5
    return cmds
