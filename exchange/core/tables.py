"""The order-entry core's state: plain numpy arrays the compiled kernels own.

Everything the hot path of order entry touches lives here instead of in Python objects:
per session the last client token and the throttle bucket; the accounts (ids, kill-switch
block, notional limit, the raw wire form of the name); the listed instruments with their
risk parameters; the working quantity and position of every account in every instrument
and product; the order table (one row per working order) with a free list; and an
open-addressing table from (session, client token) to order row. Field indexes are the
``S_*``, ``A_*``, ``I_*``, ``X_*``, ``O_*`` and ``G_*`` constants of
:mod:`exchange.core.kernel`.

Built from the same configuration the Python gateway uses (access file, listed contracts,
``RiskChecker``), so both make the same decisions. Growth (more order rows, a bigger
token table) happens here, between kernel calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from exchange.auth import AccessConfig, Login
from exchange.core import kernel as K
from exchange.engine.abi import COMMAND_DTYPE
from exchange.protocol import messages as m
from exchange.protocol.engine_map import (
    CANCEL_REASON_TO_WIRE,
    ORDER_TYPE_TO_ENGINE,
    SIDE_TO_ENGINE,
    SMP_TO_ENGINE,
    TIF_TO_ENGINE,
    reject_to_wire,
)
from exchange.risk import RiskChecker

_NS = 1_000_000_000


def account_key(name: str) -> tuple[int, int]:
    """The account field's 16 wire bytes (right-space-padded ASCII) as two big-endian
    int64 words, as :func:`exchange.core.kernel._enter_code` reads them."""
    raw = m._alpha(name, m.ACCOUNT_WIDTH)
    return int.from_bytes(raw[:8], "big"), int.from_bytes(raw[8:], "big")


def _maps() -> np.ndarray:
    """Rows: wire -> engine side, order type, time in force, SMP; engine -> wire cancel
    reason; engine reject reason -> wire reject code (256 entries each)."""
    rows = [SIDE_TO_ENGINE, ORDER_TYPE_TO_ENGINE, TIF_TO_ENGINE, SMP_TO_ENGINE]
    rows.append(CANCEL_REASON_TO_WIRE)
    rows.append([reject_to_wire(r) for r in range(256)])
    return np.array(rows, dtype=np.int64)


@dataclass
class CoreTables:
    """The arrays (see the module docstring); ``sessions`` maps a session name to its row."""

    SESS: np.ndarray
    ACCT: np.ndarray
    PERM: np.ndarray
    INST: np.ndarray
    EXP: np.ndarray
    ORD: np.ndarray
    TOKH: np.ndarray
    G: np.ndarray
    MAPS: np.ndarray
    sessions: dict[str, int] = field(default_factory=dict)
    accounts: dict[int, int] = field(default_factory=dict)  # account id -> ACCT row
    instruments: dict[int, int] = field(default_factory=dict)  # instrument id -> INST row

    @classmethod
    def build(
        cls,
        access: AccessConfig,
        risk: RiskChecker,
        now_ns: int,
        orders: int = 1 << 12,
    ) -> CoreTables:
        """Tables for every login of ``access`` and every instrument ``risk`` knows, with
        room for ``orders`` working orders (grown on demand). Each session's throttle
        bucket starts full at ``now_ns`` (monotonic), as ``exchange.throttle.Throttle``."""
        accts = sorted(access.accounts.values(), key=lambda a: a.account_id)
        ACCT = np.zeros((max(len(accts), 1), K.AF), np.int64)
        ACCT[:, K.A_KEY0] = -1  # matches no wire account field (ASCII keys are >= 0)
        for r, a in enumerate(accts):
            k0, k1 = account_key(a.name)
            ACCT[r] = (a.account_id, 0, a.max_order_notional_minor, k0, k1)
        acct_rows = {a.account_id: r for r, a in enumerate(accts)}
        for aid, limit in risk.account_max_notional.items():
            if aid in acct_rows:
                ACCT[acct_rows[aid], K.A_MAX_NOTIONAL] = limit
        logins: list[Login] = sorted(access.logins.values(), key=lambda lg: lg.session)
        SESS = np.zeros((max(len(logins), 1), K.SF), np.int64)
        PERM = np.zeros((SESS.shape[0], ACCT.shape[0]), np.int64)
        names = {a.name: r for r, a in enumerate(accts)}
        for s, lg in enumerate(logins):
            SESS[s, K.S_RATE] = lg.throttle_per_second
            SESS[s, K.S_LEVEL] = lg.throttle_per_second * _NS
            SESS[s, K.S_LAST_NS] = now_ns
            for name in lg.accounts:
                if name in names:
                    PERM[s, names[name]] = 1
        irs = sorted(risk.instruments.items())
        products = sorted({ir.product_code for _, ir in irs})
        INST = np.zeros((max(len(irs), 1), K.IF), np.int64)
        INST[:, K.I_ID] = -1
        for i, (iid, ir) in enumerate(irs):
            lo, hi = ir.limits if ir.limits is not None else (0, 0)
            INST[i] = (
                iid, ir.min_qty, ir.max_qty, ir.limits is not None, lo, hi, ir.band[0],
                ir.band[1], ir.reference_ticks is not None, ir.reference_ticks or 0,
                ir.tick_value_minor, products.index(ir.product_code), ir.spot_month,
                ir.limit_all_months, ir.limit_spot_month,
            )  # fmt: skip
        EXP = np.zeros((ACCT.shape[0], len(irs) + len(products), 3), np.int64)
        G = np.zeros(K.GF, np.int64)
        G[K.G_NEXT_SERIAL] = 1
        G[K.G_DEFAULT_MAX_NOTIONAL] = risk.default_max_notional_minor
        G[K.G_N_INST] = len(irs)
        t = cls(
            SESS, ACCT, PERM, INST, EXP, _free_rows(orders, 0),
            np.full((_pow2(4 * orders), 2), K.H_EMPTY, np.int64), G, _maps(),
            {lg.session: s for s, lg in enumerate(logins)},
            acct_rows,
            {iid: i for i, (iid, _) in enumerate(irs)},
        )  # fmt: skip
        G[K.G_FREE] = 0
        return t

    def grow(self) -> None:
        """Double the order table when it is full, and rebuild the token table (twice as
        big if it is over a quarter full) to drop deleted entries. O(orders)."""
        G = self.G
        if G[K.G_FREE] < 0:
            n = self.ORD.shape[0]
            more = _free_rows(n, n)
            self.ORD = np.concatenate([self.ORD, more])
            G[K.G_FREE] = n
        size = self.TOKH.shape[0]
        while 4 * (G[K.G_H_USED] + 1) > size or size < 2 * self.ORD.shape[0]:
            size *= 2
        new = np.full((size, 2), K.H_EMPTY, np.int64)
        G[K.G_H_USED] = K.rehash_tokens(self.TOKH, new)
        G[K.G_H_DELETED] = 0
        self.TOKH = new

    def working(self, account_id: int, instrument_id: int) -> tuple[int, int]:
        """(working buy, working sell) of an account in an instrument (for tests/admin)."""
        row = self.EXP[self.accounts[account_id], self.instruments[instrument_id]]
        return int(row[K.X_BUY]), int(row[K.X_SELL])

    def position(self, account_id: int, instrument_id: int) -> int:
        """Net position of an account in an instrument from today's fills."""
        row = self.EXP[self.accounts[account_id], self.instruments[instrument_id]]
        return int(row[K.X_POSITION])


def _free_rows(n: int, first: int) -> np.ndarray:
    """``n`` free order rows numbered from ``first``, chained into a free list."""
    rows = np.zeros((n, K.OF), np.int64)
    rows[:, K.O_NEXT] = np.arange(first + 1, first + n + 1)
    rows[-1, K.O_NEXT] = -1
    return rows


def _pow2(n: int) -> int:
    size = 1
    while size < n:
        size *= 2
    return size


def command_buffer(n: int) -> np.ndarray:
    """A zeroed ``COMMAND_DTYPE`` buffer for ``n`` commands."""
    return np.zeros(n, COMMAND_DTYPE)
