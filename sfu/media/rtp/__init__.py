"""Pure RTP mechanisms: no aiortc, no sockets, no clocks of their own; each table-tested.

``codecs`` (the one keyframe detector per codec), ``seqmap`` (a subscriber's renumbering),
``history`` (packets kept for retransmission), ``loss`` (a producer's missing packets).
"""
