"""partnerkit: what a partner runs to receive licensed data and keep a model that can forget.

It speaks only the public protocol — the official `delta-sharing` client and the forget/ack JSON API —
and never imports the platform's code (a test enforces it).
"""

__version__ = "0.1.0"
