"""Fixtures of the media tests: a Router with test settings, synthetic peers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from sfu.media.router import Router
from sfu.settings import load_settings
from tests.support import hang
from tests.support.peers import SfuPeer


@pytest.fixture
async def make_router() -> AsyncIterator[Callable[..., Router]]:
    """Routers with ``sfu`` setting overrides; all closed at the end."""
    made: list[Router] = []
    disarm = hang.arm()

    def make(**sfu: Any) -> Router:
        router = Router(load_settings(overrides={"sfu": sfu}), "room")
        made.append(router)
        return router

    yield make
    for router in made:
        await router.close()
    disarm()


@pytest.fixture
async def peers() -> AsyncIterator[Callable[[Router, str], Awaitable[SfuPeer]]]:
    """Joins synthetic participants to a router; all closed at the end."""
    made: list[SfuPeer] = []

    async def join(router: Router, user_id: str) -> SfuPeer:
        peer = await SfuPeer(router, user_id).join()
        made.append(peer)
        return peer

    yield join
    for peer in made:
        await peer.close()
