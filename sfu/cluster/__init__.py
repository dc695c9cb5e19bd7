"""Several nodes, one set of rooms (``server.redis_url``): the room directory on Redis, the
nodes' leases, and the relay that carries a participant's events to its room's node."""

from sfu.cluster.cluster import Cluster
from sfu.cluster.directory import RoomDirectory
from sfu.cluster.relay import Relay

__all__ = ["Cluster", "Relay", "RoomDirectory"]
