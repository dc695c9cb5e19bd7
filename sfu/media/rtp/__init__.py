"""Pure RTP mechanisms: no aiortc, no sockets, no clocks of their own; each table-tested.

``codecs`` (the one keyframe detector per codec), ``header`` (the fixed header and one-byte
extensions, read and written in place), ``seqmap`` (a subscriber's renumbering),
``history`` (packets kept for retransmission), ``loss`` (a producer's missing packets),
``assembler`` (frames from packets, for the recorder), ``arrival`` (RTP's clock forms).
"""
