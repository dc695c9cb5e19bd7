"""The edges: everything a client's request passes through before the domain below.

``app`` builds the aiohttp application (Socket.IO, REST, the web app on one port);
``http_edge`` and ``http_errors`` are what every HTTP request passes and the one REST error
shape; ``socketio_server`` and ``signaling`` are the one gate and the handlers of every
Socket.IO event; ``rest`` the REST routes; ``media_events`` binds SFU rooms to their media
routers; ``recording_events`` drives room recordings (sfu/recording/rooms.py) and
``recording_routes`` serves them.
Nothing below (rooms, media, recording) imports anything from here.
"""

from sfu.server.app import APP_KEY, Server, configure_logging, run

__all__ = ["APP_KEY", "Server", "configure_logging", "run"]
