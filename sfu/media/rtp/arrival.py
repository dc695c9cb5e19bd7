"""When a producer's packet arrived, in the clock forms RTP needs (abs-send-time, NTP)."""

from __future__ import annotations

import time
from typing import NamedTuple

# Seconds from the NTP epoch (1900) to the Unix epoch (1970).
NTP_UNIX_OFFSET = 2208988800


class Arrival(NamedTuple):
    """When a producer's packet arrived, in the forms each subscriber's copy needs (made
    once per packet, not once per subscriber)."""

    time: float  # Unix time
    abs_send_time: int  # NTP time as 6.18 fixed point, 24 bits (aiortc: ntp >> 14)
    abs_send_time_bytes: bytes
    ntp: int  # 64-bit NTP time, for the subscribers' RTCP sender reports

    @classmethod
    def now(cls) -> Arrival:
        now = time.time()
        abs_time = int((now + NTP_UNIX_OFFSET) * 262144) & 0xFFFFFF
        return cls(now, abs_time, abs_time.to_bytes(3), _ntp_time(now))


def _ntp_time(unix_time: float) -> int:
    """64-bit NTP time (32.32 fixed point), as aiortc's datetime-based clock gives it."""
    seconds = int(unix_time)
    return (seconds + NTP_UNIX_OFFSET) << 32 | int((unix_time - seconds) * (1 << 32))
