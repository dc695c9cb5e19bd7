"""The aiortc and aioice internals that m-line reuse and consent freshness rely on
(sfu/media/aiortc/sender.py ``reuse_sender``/``restart_sender``, transport.py
``watch_consent``): still there, still used as the SFU assumes. Private API on purpose."""

from __future__ import annotations

import inspect

import aioice.ice
import aioice.stun
from aiortc import RTCRtpSender

from sfu.media.aiortc import transport


def test_sender_starts_its_loops_once_and_stop_waits_for_rtp_exited() -> None:
    send = inspect.getsource(RTCRtpSender.send)
    # send() starts the RTP loop only the first time: a reused m-line's sender needs
    # restart_sender, which sets the same attributes.
    assert "if not self.__started:" in send
    assert "self.__rtp_task = asyncio.ensure_future(self._run_rtp(" in send
    stop = inspect.getsource(RTCRtpSender.stop)
    assert "self.__rtp_task.cancel()" in stop and "self.__rtp_exited.wait()" in stop
    init = inspect.getsource(RTCRtpSender.__init__)
    for name in ("__started", "__rtp_exited", "__rtp_task", "_ssrc"):
        assert f"self.{name}" in init, name
    # The msid's track id follows replaceTrack.
    assert "self._track_id = track.id" in inspect.getsource(RTCRtpSender.replaceTrack)


def test_consent_task_is_looked_up_on_the_connection() -> None:
    connect = inspect.getsource(aioice.ice.Connection.connect)
    assert "self._query_consent_task = asyncio.create_task(self.query_consent())" in connect
    close = inspect.getsource(aioice.ice.Connection.close)
    assert "self._query_consent_task" in close
    consent = inspect.getsource(aioice.ice.Connection.query_consent)
    for needle in ("self._nominated.values()", "self.build_request(pair, nominate=False)",
                   "pair.protocol.request(", "retransmissions=", "await self.close()"):  # fmt: skip
        assert needle in consent, needle
    assert issubclass(aioice.stun.TransactionTimeout, aioice.stun.TransactionError)
    assert transport.CONSENT_TIMEOUT < aioice.ice.CONSENT_INTERVAL * aioice.ice.CONSENT_FAILURES
