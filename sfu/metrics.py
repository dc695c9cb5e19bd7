"""Prometheus metrics of one server instance (own registry, so several apps can coexist)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import GaugeMetricFamily


class Metrics:
    """Counters and gauges exported at ``GET /metrics``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.events = Counter(
            "sfu_signaling_events",
            "Socket.IO events received, by event and result (ok or error code).",
            ["event", "result"],
            registry=self.registry,
        )
        self.connections = Gauge(
            "sfu_socket_connections", "Open Socket.IO connections.", registry=self.registry
        )

    def set_node(self, node_id: str) -> None:
        """With a cluster: this node's id as a label (``sfu_node{node="a"} 1``), so the
        figures of the nodes behind one address can be told apart."""
        Gauge(
            "sfu_node", "This node of the cluster (always 1).", ["node"], registry=self.registry
        ).labels(node_id).set(1)

    def add_room_stats(self, stats: Callable[[], dict]) -> None:
        """Export room and participant counts by mode, read at scrape time."""

        class RoomCollector:
            def collect(self):  # noqa: ANN202 - prometheus collector protocol
                data = stats()
                rooms = GaugeMetricFamily("sfu_rooms", "Rooms, by mode.", labels=["mode"])
                people = GaugeMetricFamily(
                    "sfu_participants", "Participants, by room mode.", labels=["mode"]
                )
                for mode, figures in data["byMode"].items():
                    rooms.add_metric([mode], figures["rooms"])
                    people.add_metric([mode], figures["participants"])
                yield rooms
                yield people

        self.registry.register(RoomCollector())

    def render(self) -> bytes:
        return generate_latest(self.registry)
