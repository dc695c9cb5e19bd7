"""CPU cost of one wake-up from idle, on this machine: what the SFU's design counts in.

A process that sleeps and wakes N times, each wake-up doing (almost) nothing: a bare
``time.sleep`` loop, asyncio's event loop woken by a timer, and woken by a UDP datagram
on loopback (sent by a thread of this process). Reports the process's CPU time per
wake-up. On the shared 2-core VM of docs/performance.md this is about 60 us for a bare
sleep and about 200 us for an asyncio wake-up, more than forwarding one RTP packet, so
the server avoids wake-ups of its own (docs/sfu.md, "Wake-ups").

    .venv/bin/python benchmarks/wakeups.py [--count 300] [--interval 0.01]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import threading
import time


def bare_sleep(count: int, interval: float) -> float:
    start = time.process_time()
    for _ in range(count):
        time.sleep(interval)
    return (time.process_time() - start) / count


async def timer_wakeups(count: int, interval: float) -> float:
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    woken = 0

    def wake() -> None:
        nonlocal woken
        woken += 1
        if woken < count:
            loop.call_later(interval, wake)
        else:
            done.set()

    start = time.process_time()
    loop.call_later(interval, wake)
    await done.wait()
    return (time.process_time() - start) / count


async def datagram_wakeups(count: int, interval: float) -> float:
    """Only the event loop's thread is counted (the sender is another thread)."""
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    received = 0

    class Protocol(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple) -> None:
            nonlocal received
            received += 1
            if received == count:
                done.set()

    transport, _ = await loop.create_datagram_endpoint(Protocol, local_addr=("127.0.0.1", 0))
    address = transport.get_extra_info("sockname")

    def send() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for _ in range(count):
                time.sleep(interval)
                sock.sendto(bytes(1100), address)

    start = time.thread_time()
    sender = threading.Thread(target=send)
    sender.start()
    await done.wait()
    cost = (time.thread_time() - start) / count
    sender.join()
    transport.close()
    return cost


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--interval", type=float, default=0.01, help="seconds between wake-ups")
    args = parser.parse_args()
    results = {
        "bare time.sleep": bare_sleep(args.count, args.interval),
        "asyncio, timer": asyncio.run(timer_wakeups(args.count, args.interval)),
        "asyncio, UDP datagram (loop thread)": asyncio.run(
            datagram_wakeups(args.count, args.interval)
        ),
    }
    for name, cost in results.items():
        print(f"{name:38s} {cost * 1e6:6.0f} us CPU per wake-up")


if __name__ == "__main__":
    main()
