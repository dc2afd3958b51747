"""The socket edge: WebSocket connections on websockets' sans-I/O core, turned into calls on the
runtime through the one seam in :mod:`membrane_rtc.seam`. No room logic, no actor code.
"""

from .gateway import Gateway

__all__ = ["Gateway"]
