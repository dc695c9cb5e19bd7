"""Publishers' media reaches subscribers through the router, encoded, intact and in order."""

from __future__ import annotations

import asyncio
import re
import time

import av
import pytest

from sfu.media.aiortc import receiver as rx
from sfu.media.aiortc import sender as tx
from sfu.media.frames import EncodedFrame
from tests.support.link import LinkEmulator
from tests.support.peers import NumberedVideoTrack, ToneTrack, assert_in_order, read_number

pytestmark = pytest.mark.webrtc

NTP_UNIX_OFFSET = 2208988800  # seconds from 1900 (NTP) to 1970 (Unix)


async def test_video_reaches_several_subscribers_in_order(netns, make_router, peers):
    router = make_router()
    alice = await peers(router, "alice")
    subscribers = [await peers(router, f"sub{i}") for i in range(3)]
    ack = await alice.publish({"camera": NumberedVideoTrack(), "microphone": ToneTrack()})
    assert ack["ok"], ack
    assert sorted((t["kind"], t["source"], t["active"]) for t in ack["tracks"]) == [
        ("audio", "microphone", True),
        ("video", "camera", True),
    ]
    for sub in subscribers:
        received = await sub.wait_video("alice", 60)
        assert_in_order(received, 60)
        # Nothing skipped once the picture started: no frame lost on the way.
        assert received.numbers[-1] - received.numbers[0] == len(received.numbers) - 1
        assert {(r.user_id, r.source, r.kind) for r in sub.received.values()} == {
            ("alice", "camera", "video"),
            ("alice", "microphone", "audio"),
        }
    # The server forwarded the publisher's packets; it never ran a video encoder, and no
    # frame went through aiortc's jitter buffer.
    stats = router.stats()
    assert stats["forwardingEncodes"] == 0
    assert stats["consumers"] == 6
    for participant in router.participants.values():
        if participant.subscribe is None:
            continue
        for outgoing in participant.subscribe.consumers:
            sender = outgoing.transceiver.sender
            assert tx.sender_packer(sender) is outgoing.packer
            assert outgoing.track.forwarded > 0
    for producer in router.producers.values():
        receiver = producer.tap.receiver
        # aiortc's jitter buffer is the tap's stand-in, which keeps no packet.
        assert isinstance(receiver._RTCRtpReceiver__jitter_buffer, rx._JitterTap)
    # The server's sender reports (paced by the room's RtcpClock) reached every subscriber,
    # with what was forwarded: browsers sync audio and video by them.
    for sub in subscribers:
        for receiver in sub.subscribe_pc.getReceivers():
            reports = [
                s for s in (await receiver.getStats()).values() if s.type == "remote-outbound-rtp"
            ]
            assert reports and reports[0].packetsSent > 0, receiver.track.kind


async def test_late_joiner_gets_a_picture(netns, make_router, peers, caplog):
    # aiortc's publisher makes a keyframe only every 3000 frames: without the router's
    # keyframe request a late joiner would never see a picture.
    router = make_router()
    alice = await peers(router, "alice")
    requests: list[float] = []
    await alice.publish({"camera": NumberedVideoTrack()})
    tx.on_keyframe_request(alice.publish_sender("video"), lambda: requests.append(1))
    bob = await peers(router, "bob")
    await bob.wait_video("alice", 30)
    before = len(requests)
    carol = await peers(router, "carol")
    received = await carol.wait_video("alice", 15, timeout=20)
    assert_in_order(received, 15)
    assert len(requests) > before, "the late joiner's keyframe request never reached alice"
    # Held until a keyframe: the joiner's decoder never got a frame it could not decode.
    failures = [r for r in caplog.records if "failed to decode" in r.getMessage()]
    assert failures == []
    # The earlier subscriber went on undisturbed.
    assert_in_order(bob.video_from("alice"), 30)


async def test_subscriber_pli_reaches_the_publisher_throttled(netns, make_router, peers):
    router = make_router(keyframe_min_interval_ms=500)
    alice = await peers(router, "alice")
    await alice.publish({"camera": NumberedVideoTrack()})
    subs = [await peers(router, "bob"), await peers(router, "carol")]
    for sub in subs:
        await sub.wait_video("alice", 10)
    await asyncio.sleep(1)  # let the joiners' own keyframe requests pass
    requests: list[float] = []
    loop = asyncio.get_running_loop()
    tx.on_keyframe_request(alice.publish_sender("video"), lambda: requests.append(loop.time()))
    start = loop.time()
    for _ in range(10):  # 20 PLIs in about 1 s from two subscribers
        for sub in subs:
            receiver = next(
                t.receiver for t in sub.subscribe_pc.getTransceivers() if t.kind == "video"
            )
            ssrc = receiver.getSynchronizationSources()[0].source
            await rx.send_pli(receiver, ssrc)
        await asyncio.sleep(0.1)
    await asyncio.sleep(1)
    elapsed = loop.time() - start
    assert requests, "no subscriber PLI reached the publisher"
    # Merged and throttled: at most one request per 500 ms (20 PLIs came in).
    assert len(requests) <= elapsed / 0.5 + 2, requests
    gaps = [b - a for a, b in zip(requests, requests[1:], strict=False)]
    assert all(g >= 0.3 for g in gaps), gaps  # 0.5 s apart when sent; delivery jitters


async def test_slow_subscriber_does_not_hold_back_the_others(netns, make_router, peers):
    queue = 8
    router = make_router(subscriber_queue_frames=queue, keyframe_min_interval_ms=300)
    alice = await peers(router, "alice")
    await alice.publish({"camera": NumberedVideoTrack()})
    bob = await peers(router, "bob")
    carol = await peers(router, "carol")
    await bob.wait_video("alice", 10)
    await carol.wait_video("alice", 10)
    # Carol's downlink now takes 60 ms per packet: her sender falls far behind.
    link = LinkEmulator(delay=0.06)
    link.attach(router.participants["carol"].subscribe.pc)
    bob_start = len(bob.video_from("alice").numbers)
    carol_start = len(carol.video_from("alice").numbers)
    await asyncio.sleep(4)
    bob_video = bob.video_from("alice")
    carol_video = carol.video_from("alice")
    # Bob still gets every frame (about 30 per second), in order and intact.
    assert len(bob_video.numbers) - bob_start >= 4 * 30 * 0.7
    assert_in_order(bob_video, 40)
    assert bob_video.numbers[-1] - bob_video.numbers[0] == len(bob_video.numbers) - 1
    # Carol's queue stayed bounded: frames were dropped to a keyframe, and what she
    # decodes is still a correct picture.
    stats = router.stats()
    assert stats["queueOverflows"] > 0
    assert stats["maxQueueDepth"] <= queue
    assert carol_video.unclean == 0
    assert all(b > a for a, b in zip(carol_video.numbers, carol_video.numbers[1:], strict=False))
    assert len(carol_video.numbers) > carol_start


async def test_speaker_audio_level_is_kept(netns, make_router, peers):
    router = make_router(audio_level_interval_ms=100)
    alice = await peers(router, "alice")
    bob = await peers(router, "bob")
    await alice.publish({"microphone": ToneTrack(dbov=-20)})

    async def level_push() -> dict:
        while True:
            for event, payload in bob.events:
                if event == "sfu-audio-levels" and payload["levels"]:
                    level = payload["levels"][0]
                    if level["dBov"] > -100:
                        return level
            bob.changed.clear()
            await bob.changed.wait()

    level = await asyncio.wait_for(level_push(), 20)
    assert level["userId"] == "alice"
    assert -26 <= level["dBov"] <= -14, level
    assert -26 <= router.audio_levels()["alice"]["dBov"] <= -14


async def test_screen_share_starts_and_stops_by_reoffer(netns, make_router, peers):
    router = make_router()
    alice = await peers(router, "alice")
    bob = await peers(router, "bob")
    await alice.publish({"camera": NumberedVideoTrack()})
    await bob.wait_video("alice", 10)
    # Starting a screen share: alice re-offers with one more track, labelled "screen".
    screen = NumberedVideoTrack()
    assert (await alice.publish({"screen": screen}))["ok"]
    assert_in_order(await bob.wait_video("alice", 20, source="screen"), 20)
    # Stopping it: that m-line stops sending; bob's m-line for it turns inactive.
    transceiver = next(t for t in alice.publish_pc.getTransceivers() if t.sender.track is screen)
    transceiver.direction = "inactive"
    assert (await alice.publish({}))["ok"]

    def latest_tracks() -> list[dict]:
        return [p for e, p in bob.events if e == "sfu-subscribe-offer"][-1]["tracks"]

    async def screen_gone() -> None:
        while not any(t["source"] == "screen" and not t["active"] for t in latest_tracks()):
            bob.changed.clear()
            await bob.changed.wait()

    await asyncio.wait_for(screen_gone(), 20)
    assert [(p["source"], p["kind"]) for p in router.stats()["producers"]] == [("camera", "video")]
    # The camera went on, on the same connection (one subscribe session).
    camera = bob.video_from("alice")
    count = len(camera.numbers)
    await bob.wait_video("alice", count + 15)
    assert_in_order(camera, count + 15)
    assert {p["session"] for e, p in bob.events if e == "sfu-subscribe-offer"} == {1}
    assert bob.answer_errors == []


async def test_lost_packet_does_not_stall_the_picture(netns, make_router, peers):
    # A packet lost for good (its retransmissions too) would hold a subscriber's aiortc
    # jitter buffer until 512 packets overflow it (seconds). After 300 ms the router fills
    # the hole with padding, drops to the next keyframe and asks for one.
    router = make_router(jitter_timeout_ms=300, keyframe_min_interval_ms=200)
    alice = await peers(router, "alice")
    bob = await peers(router, "bob")
    await alice.publish({"camera": NumberedVideoTrack()})
    received = await bob.wait_video("alice", 15)
    sdp = alice.publish_pc.remoteDescription.sdp
    rtx = {int(m) for m in re.findall(r"a=rtpmap:(\d+) rtx/", sdp)}
    vp8 = {int(m) for m in re.findall(r"a=rtpmap:(\d+) VP8/", sdp)}
    lose = {"next": False, "lost": 0}

    def drop(data: bytes) -> bool:
        payload_type = data[1] & 0x7F
        if payload_type in rtx:
            return True  # no retransmission ever repairs the loss
        if lose["next"] and payload_type in vp8:
            lose["next"] = False
            lose["lost"] += 1
            return True
        return False

    LinkEmulator(drop=drop).attach(alice.publish_pc)
    await asyncio.sleep(0.5)
    before = len(received.numbers)
    lose["next"] = True
    loop = asyncio.get_running_loop()
    start = loop.time()
    await bob.wait_video("alice", before + 40, timeout=20)
    assert lose["lost"] == 1
    # 40 frames take 1.3 s at 30 fps: allow the skip, a keyframe and a loaded machine.
    assert loop.time() - start < 3.0
    assert router.stats()["producers"][0]["lostPackets"] == 1
    # The frames sent between the loss and the skip referred to the lost one: aiortc may
    # decode them with damaged pixels (a browser discards them). Then every picture is
    # clean and in order, missing at most what came between the loss and the keyframe.
    clean = received.numbers[-received.clean_run :]
    assert len(clean) >= 30, received
    assert all(b > a for a, b in zip(clean, clean[1:], strict=False)), clean
    assert clean[-1] - clean[0] + 1 - len(clean) <= 30, clean


async def test_publisher_bitrate_is_capped(netns, make_router, peers):
    router = make_router(max_video_bitrate_kbps=100)
    alice = await peers(router, "alice")
    bob = await peers(router, "bob")
    ack = await alice.publish({"camera": NumberedVideoTrack(noise=128)})
    video_section = ack["description"]["sdp"].split("m=video")[1]
    assert "b=AS:100\r\n" in video_section and "b=TIAS:100000\r\n" in video_section
    await bob.wait_video("alice", 10)
    encoder = tx.sender_packer(alice.publish_sender("video"))
    # aiortc's publisher applies the REMB it receives to its encoder, whose floor is
    # 250 kbps; without the cap the server's estimate of its uplink is far higher.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 15
    while encoder.target_bitrate != 250_000:
        assert loop.time() < deadline, f"publisher target still {encoder.target_bitrate}"
        await asyncio.sleep(0.1)
    for _ in range(20):
        await asyncio.sleep(0.1)
        assert encoder.target_bitrate == 250_000


async def test_sink_gets_decodable_frames_of_every_producer(netns, make_router, peers):
    # The recorder's hook: encoded frames, decoded once per publisher by the consumer.
    router = make_router()
    alice = await peers(router, "alice")
    await alice.publish({"camera": NumberedVideoTrack(), "microphone": ToneTrack()})
    frames: list[tuple[str, str, str, EncodedFrame]] = []
    enough = asyncio.Event()

    def sink(*args: object) -> None:
        frames.append(args)
        if sum(f[2] == "video" for f in frames) >= 20:
            enough.set()

    remove = router.add_sink(sink)
    await asyncio.wait_for(enough.wait(), 20)
    remove()
    count = len(frames)
    await asyncio.sleep(0.3)
    assert len(frames) == count  # removed: no more calls
    assert {(user, source, kind) for user, source, kind, _ in frames} == {
        ("alice", "camera", "video"),
        ("alice", "microphone", "audio"),
    }
    video = [f for _, _, kind, f in frames if kind == "video"]
    decoder = av.CodecContext.create("libvpx", "r")
    numbers = []
    for frame in video[video.index(next(f for f in video if f.keyframe)) :]:
        for picture in decoder.decode(frame.to_packet()):
            number, clean = read_number(picture.to_ndarray(format="gray"))
            assert clean
            numbers.append(number)
    assert len(numbers) >= 10
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))
    assert [f.timestamp for f in video] == sorted(f.timestamp for f in video)


async def test_frames_carry_the_senders_capture_time(netns, make_router, peers):
    # From the publisher's RTCP sender reports (NTP <-> RTP): one wall clock for its audio
    # and video, which the recorder uses for lip sync. aiortc's sender reports the wall
    # time of its last packet, so here the capture time is about now.
    router = make_router()
    alice = await peers(router, "alice")
    await alice.publish({"camera": NumberedVideoTrack(), "microphone": ToneTrack()})
    got: dict[str, list[tuple[float, float]]] = {"audio": [], "video": []}
    enough = asyncio.Event()

    def sink(user: str, source: str, kind: str, frame: EncodedFrame) -> None:
        if frame.capture is not None:
            got[kind].append((frame.capture - NTP_UNIX_OFFSET, time.time()))
            if all(len(v) >= 10 for v in got.values()):
                enough.set()

    router.add_sink(sink)
    await asyncio.wait_for(enough.wait(), 15)  # the first reports come within ~2 s
    for kind, pairs in got.items():
        lags = [now - capture for capture, now in pairs]
        assert all(-0.05 < lag < 0.5 for lag in lags), (kind, lags)
        captures = [capture for capture, _ in pairs]
        assert captures == sorted(captures), kind


async def test_publisher_can_start_over_with_a_new_connection(netns, make_router, peers):
    # E.g. a browser that rebuilt its RTCPeerConnection: a new ICE session, same user.
    router = make_router()
    alice = await peers(router, "alice")
    bob = await peers(router, "bob")
    await alice.publish({"camera": NumberedVideoTrack()})
    first = await bob.wait_video("alice", 10)
    await alice.publish_pc.close()
    alice.publish_pc = None
    assert (await alice.publish({"camera": NumberedVideoTrack()}))["ok"]

    async def second_track() -> None:
        while len([r for r in bob.received.values() if r.source == "camera"]) < 2:
            bob.changed.clear()
            await bob.changed.wait()

    await asyncio.wait_for(second_track(), 20)
    second = next(r for r in bob.received.values() if r is not first)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while len(second.numbers) < 15:
        assert loop.time() < deadline, "no picture from the new connection"
        await asyncio.sleep(0.1)
    assert_in_order(second, 15)
    assert len(router.stats()["producers"]) == 1


async def test_h264_when_configured(netns, make_router, peers):
    router = make_router(video_codec="H264")
    alice = await peers(router, "alice")
    bob = await peers(router, "bob")
    ack = await alice.publish({"camera": NumberedVideoTrack()})
    assert "H264/90000" in ack["description"]["sdp"]
    assert "VP8/90000" not in ack["description"]["sdp"]
    received = await bob.wait_video("alice", 30)
    assert_in_order(received, 30)
    offer = [p for e, p in bob.events if e == "sfu-subscribe-offer"][-1]
    assert "H264/90000" in offer["description"]["sdp"]
    assert "VP8/90000" not in offer["description"]["sdp"]
    assert router.stats()["forwardingEncodes"] == 0


async def test_late_joiner_gets_every_publisher_at_once(netns, make_router, peers):
    # A joiner whose first subscribe offer carries several publishers' m-lines at once.
    router = make_router()
    publishers = [await peers(router, name) for name in ("alice", "bob", "carol")]
    for p in publishers:
        await p.publish({"camera": NumberedVideoTrack(), "microphone": ToneTrack()})
    for p in publishers:
        for other in publishers:
            if other is not p:
                await p.wait_video(other.user_id, 10)
    dave = await peers(router, "dave")
    for p in publishers:
        assert_in_order(await dave.wait_video(p.user_id, 15, timeout=20), 15)
    stats = router.stats()
    assert stats["queueOverflows"] == 0
    assert [c for c in stats["consumerList"] if not c["sending"]] == []


async def test_the_slowest_subscribers_remb_reaches_the_publisher(netns, make_router, peers):
    router = make_router()
    alice = await peers(router, "alice")
    await alice.publish({"camera": NumberedVideoTrack(noise=128)})
    bob = await peers(router, "bob")
    await bob.wait_video("alice", 10)

    def target() -> int | None:
        encoder = tx.sender_packer(alice.publish_sender("video"))
        return None if encoder is None else encoder.target_bitrate

    async def until(condition, timeout: float, what: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (value := target()) is None or not condition(value):
            assert loop.time() < deadline, f"{what}: the publisher's target is {value}"
            await asyncio.sleep(0.1)

    # One fast subscriber: the publisher climbs well above aiortc's 500 kbps start.
    await until(lambda b: b >= 600_000, 20, "no high estimate with one fast subscriber")
    # Carol's link takes only 300 kbps: her REMB (the lowest) is what alice is told.
    carol = await peers(router, "carol")
    await carol.wait_video("alice", 5)
    for receiver in carol.subscribe_pc.getReceivers():
        rx.cap_receiver_remb(receiver, lambda: 300_000)
    await until(lambda b: b <= 300_000, 10, "carol's low REMB never reached alice")
    # Carol leaves: her REMB no longer holds alice back.
    await carol.close()
    await router.leave("carol")
    await until(lambda b: b >= 450_000, 20, "alice stayed held back after carol left")
