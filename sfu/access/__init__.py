"""Who may enter a room and what each participant may do there.

``grants`` (what a participant may do), ``tokens`` (signed join tokens: JWT), ``passwords``
(room passwords, kept only as argon2 hashes). The room registry and the edges use them; they
use nothing above the support layer.
"""
