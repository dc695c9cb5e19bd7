"""Helpers shared by the test suites: a raw Socket.IO client and the abuse suites' checks
(raw_socketio, checks), a network link emulator for media tests (link)."""
