"""The admin actor: where operators' requests enter, from this process or any other.

Registered under the global name ``ADMIN_NAME``, so ``membrane-rtc admin`` finds it through
Thespian's admin port in the multi-process mode (and through the loopback admin channel in the
embedded mode). It checks what can be checked up front and passes each request on to the
supervisor, which answers the asker directly.
"""

from __future__ import annotations

from typing import Any

from thespian.actors import requireCapability

from ..loading import SpecError, load_class
from ..ops.operations import OPERATIONS
from ..room import Room
from .actor import MembraneActor
from .messages import SUPERVISOR_NAME, Address, Request
from .messages.admin import CreateRoom
from .placement import LEADER
from .supervisor import RoomSupervisor

#: The operations the admin actor takes; anything else is refused with a clear error.
REQUESTS = tuple(operation.request for operation in OPERATIONS)


@requireCapability(LEADER)
class AdminActor(MembraneActor):
    """Relays operators' requests to the supervisor."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.supervisor: Address = None

    def handle(self, message: Any, sender: Address) -> None:
        if not isinstance(message, Request):
            super().handle(message, sender)
            return
        if not isinstance(message, REQUESTS):
            self.answer(message, sender, error=f"unknown operation {type(message).__name__}")
            return
        if isinstance(message, CreateRoom):
            try:
                load_class(message.room_class, Room).check_options(message.options)
            except (SpecError, ValueError) as exc:  # SpecError is a ValueError too
                self.answer(message, sender, error=str(exc))
                return
        if self.supervisor is None:
            self.supervisor = self.createActor(RoomSupervisor, globalName=SUPERVISOR_NAME)
        message.reply_to = message.reply_to or sender
        self.send(self.supervisor, message)
