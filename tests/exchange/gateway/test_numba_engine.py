"""The production path: the same trading scenario through the numba batch kernel."""

from __future__ import annotations

from exchange.protocol import messages as m

from .conftest import H100Z26, Live


def test_two_sessions_trade_through_the_numba_engine(live) -> None:
    got = []

    async def scenario(lv: Live) -> None:
        alice, bob = await lv.logged_in("alice"), await lv.logged_in("bob")
        ts = bob.enter(H100Z26, "S", 5, price=2800, account="BOB")
        await bob.wait_for_token(ts)
        tb = alice.enter(H100Z26, "B", 5, price=2800, account="ALICE")
        got.append(await alice.wait_for(lambda x: isinstance(x, m.Executed) and x.token == tb))
        got.append(await bob.wait_for(lambda x: isinstance(x, m.Executed) and x.token == ts))
        t2 = alice.enter(H100Z26, "B", 1, price=2700, account="ALICE")
        await alice.wait_for_token(t2)
        alice.cancel(t2)
        got.append(await alice.wait_for(lambda x: isinstance(x, m.Canceled)))
        await alice.close()
        await bob.close()

    live(scenario, engine="numba")
    a, b, c = got
    assert (a.quantity, a.leaves, b.leaves, a.match_id) == (5, 0, 0, b.match_id)
    assert c.quantity == 1
