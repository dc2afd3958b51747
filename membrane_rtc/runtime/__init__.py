"""The Thespian side: supervisor, room and peer actors, their messages, and the asyncio bridge.

Actors here hold no sockets; they only react to the messages in :mod:`.messages`.
"""

