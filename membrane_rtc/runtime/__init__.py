"""The Thespian side: supervisor and room actors (hosting peers), their messages, the bridge.

Actors here hold no sockets; they only react to the messages in :mod:`.messages`. The
operators' tools (:mod:`membrane_rtc.ops`) use the runtime through :mod:`.api` only.
"""
