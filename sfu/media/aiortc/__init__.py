"""Every touch of aiortc's and aioice's private API, and nothing else.

aiortc has no supported way to receive or send media without decoding and encoding it
(aiortc#449), so the forwarding path reaches into aiortc 1.16 internals here and nowhere
else (tests/test_private_api.py checks that on the code); tests/media/test_aiortc_contract.py
pins each internal used, so an aiortc upgrade that moves one fails loudly instead of
silently re-encoding or stalling.

- ``receiver``: a receiver's packets as they arrive, without decoding (``ReceiverTap``, its
  fast path), the jitter buffer only while frames are wanted, PLI, the REMB cap.
- ``sender``: a subscriber's copy of a producer (``ForwardingTrack``: keyframe gating,
  renumbering with :mod:`sfu.media.rtp`, NACK history, SRTP and the socket send), the
  sender's non-encoding "encoder" (``Packer``), sender reports paced by the room
  (``RtcpClock``), codec restriction.
- ``transport``: SRTP datagrams from the socket straight to the DTLS transport and a
  receiver's fast path, peer activity, coroutines driven without a task, ICE host addresses.
- ``srtp``: libsrtp through pylibsrtp's binding with one shared buffer.
"""
