"""Two nodes and a real Redis, with Chromium participants: rooms span the nodes, and an SFU
room whose node restarts comes back as an SFU room with its media (#15).

Alice opens node A's address, Bob and Carol node B's; each room runs on one node (the one
that got its first join) and the others' events are relayed to it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import (
    ADMIN_TOKEN,
    LaunchFn,
    Participant,
    ServerProcess,
    assert_hears,
    assert_sees,
    http_json,
    start_server,
    stop_server,
    wait_until,
)
from tests.support.redis_server import RedisServer

pytestmark = [pytest.mark.webrtc, pytest.mark.browser]


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    redis = RedisServer(tmp_path_factory.mktemp("redis"))
    redis.start()
    yield redis.url
    redis.stop()


def node_env(redis_url: str, node_id: str) -> dict[str, str]:
    return {
        "SFU_SERVER__REDIS_URL": redis_url,
        "SFU_SERVER__NODE_ID": node_id,
        "SFU_SERVER__NODE_LEASE_SECONDS": "3",
        "SFU_SERVER__SHUTDOWN_GRACE_SECONDS": "0.5",
    }


@pytest.fixture(scope="module")
def nodes(
    redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, ServerProcess]]:
    made = {
        name: start_server(tmp_path_factory.mktemp(f"node-{name}"), node_env(redis_url, name))
        for name in ("a", "b")
    }
    yield made
    for server in made.values():
        if server.proc.poll() is None:
            stop_server(server)


def join(launch: LaunchFn, name: str, server: ServerProcess, room_id: str) -> Participant:
    p = launch(name, path=f"{server.url}/room/{room_id}?name={name}&raw_audio=1")
    p.wait_joined()
    return p


def everyone_sees_and_hears(people: list[Participant]) -> None:
    for viewer in people:
        for other in people:
            if other is not viewer:
                assert_sees(viewer, other.name)
                assert_hears(viewer, other.name)


def owner(server: ServerProcess, room_id: str) -> Any:
    status, body = http_json("GET", f"{server.url}/api/rooms/{room_id}")
    return body if status == 200 else None


@pytest.mark.parametrize("mode", ["p2p", "sfu"])
def test_three_people_on_two_nodes_see_and_hear_each_other(
    netns: None, launch: LaunchFn, nodes: dict[str, ServerProcess], mode: str
) -> None:
    a, b = nodes["a"], nodes["b"]
    room_id = a.create_room(mode)  # runs on a
    alice = join(launch, "Alice", a, room_id)
    bob = join(launch, "Bob", b, room_id)
    carol = join(launch, "Carol", b, room_id)
    people = [alice, bob, carol]
    try:
        everyone_sees_and_hears(people)
        assert owner(a, room_id)["mode"] == mode
        # Not b's: Bob's and Carol's events went to a; b answers from the directory.
        status, seen_from_b = http_json("GET", f"{b.url}/api/rooms/{room_id}", token=ADMIN_TOKEN)
        assert status == 200 and seen_from_b["node"] == "a" and seen_from_b["mode"] == mode
    finally:
        for p in people:
            p.close()


def test_an_sfu_rooms_node_restarts_and_the_room_comes_back_as_an_sfu_room(
    netns: None,
    launch: LaunchFn,
    nodes: dict[str, ServerProcess],
    redis_url: str,
    tmp_path: Path,
) -> None:
    a, b = nodes["a"], nodes["b"]
    room_id = a.create_room("sfu")
    alice = join(launch, "Alice", a, room_id)
    bob = join(launch, "Bob", b, room_id)
    carol = join(launch, "Carol", b, room_id)
    people = [alice, bob, carol]
    try:
        for viewer in people:
            for other in people:
                if other is not viewer:
                    assert_sees(viewer, other.name)
        # Node a restarts (SIGTERM, then a new process on the same address).
        stop_server(a)
        stopped = time.monotonic()
        nodes["a"] = a = start_server(tmp_path, node_env(redis_url, "a2"), port=a.port)

        # Everyone's app rejoins by itself; the room runs on the node of the first rejoin
        # (b, or the new a) and is still an SFU room: a router forwarding all six tracks.
        def media() -> Any:  # from the node that runs it (the other one has no counters)
            for server in (b, a):
                status, body = http_json(
                    "GET", f"{server.url}/api/rooms/{room_id}", token=ADMIN_TOKEN
                )
                if status == 200 and body.get("mode") == "sfu" and "media" in body:
                    m = body["media"]
                    if len(m["producers"]) == 6 and m["consumers"] == 12:
                        return m
            return None

        first = wait_until(media, timeout=45, what="the SFU room back with six tracks")
        wait_until(
            lambda: (
                (m := media()) is not None and m["forwardedFrames"] > first["forwardedFrames"] + 100
            ),
            what="frames forwarded",
        )
        for viewer in people:
            for other in people:
                if other is not viewer:
                    assert_sees(viewer, other.name, timeout=45)
        healed = time.monotonic() - stopped
        print(f"SFU room back with media {healed:.1f} s after its node stopped")
        # Bob never left the meeting: his page stayed in the room and shows SFU mode.
        assert bob.page.get_by_test_id("room").get_attribute("data-mode") == "sfu"
    finally:
        for p in people:
            p.close()
