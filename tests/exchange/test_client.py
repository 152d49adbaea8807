"""The asyncio client library: waiting, tokens, errors, reconnect."""

from __future__ import annotations

import pytest

from contracts.errors import FlopexError
from exchange.client import LoginRejected
from exchange.protocol import messages as m
from tests.exchange.gateway.conftest import H100Z26, Live, run_live


def test_wait_for_times_out_with_a_flopex_error(tmp_path) -> None:
    got = []

    async def scenario(lv: Live) -> None:
        alice = await lv.logged_in("alice")
        with pytest.raises(FlopexError, match="no matching reply"):
            await alice.wait_for(lambda x: isinstance(x, m.Executed), timeout=0.2)
        got.append(True)
        await alice.close()

    run_live(tmp_path, scenario)
    assert got == [True]


def test_wrong_password_raises_login_rejected(tmp_path) -> None:
    got = []

    async def scenario(lv: Live) -> None:
        with pytest.raises(LoginRejected) as info:
            await lv.client("alice", "bad").connect()
        got.append(info.value.reason)

    run_live(tmp_path, scenario)
    assert got == ["A"]


def test_tokens_increase_across_enter_replace_and_mass_cancel(tmp_path) -> None:
    got = []

    async def scenario(lv: Live) -> None:
        alice = await lv.logged_in("alice")
        t1 = alice.enter(H100Z26, "B", 1, price=2600, account="ALICE")
        await alice.wait_for_token(t1)
        t2 = alice.replace(t1, 2601, 1)
        t3 = alice.mass_cancel()
        got.extend([t1, t2, t3, type(await alice.wait_for_token(t3)).__name__])
        await alice.close()

    run_live(tmp_path, scenario)
    assert got == [1, 2, 3, "MassCancelDone"]


def test_send_without_connection_is_a_flopex_error(tmp_path) -> None:
    from exchange.client import OrderClient

    c = OrderClient("127.0.0.1", 1, "alice", "pw")
    with pytest.raises(FlopexError, match="not connected"):
        c.cancel(1)
