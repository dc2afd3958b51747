"""What every membrane-rtc actor shares (runtime/actor.py), on Thespian's in-process base."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from thespian.actors import ActorSystem

from membrane_rtc.runtime.actor import MembraneActor
from membrane_rtc.runtime.messages import Batch, Reply, Request
from membrane_rtc.runtime.ordering import Sequenced


@dataclass
class Divide(Request):
    numerator: int
    denominator: int


@dataclass
class Note:
    text: str


@dataclass
class ReadNotes(Request):
    pass


class Calculator(MembraneActor):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.notes: list[str] = []

    def receiveMsg_Divide(self, message: Divide, sender: Any) -> None:
        self.answer(message, sender, message.numerator // message.denominator)

    def receiveMsg_Note(self, note: Note, sender: Any) -> None:
        if note.text == "bad":
            raise ValueError("a bad note")
        self.notes.append(note.text)

    def receiveMsg_ReadNotes(self, message: ReadNotes, sender: Any) -> None:
        self.answer(message, sender, self.notes)


def test_a_request_whose_handler_raises_is_answered_at_once_with_an_error() -> None:
    system = ActorSystem("simpleSystemBase", transientUnique=True, logDefs=False)
    try:
        calculator = system.createActor(Calculator)
        assert system.ask(calculator, Divide(7, 2, request_id=1), 1) == Reply(1, None, 3)
        reply = system.ask(calculator, Divide(1, 0, request_id=2), 1)
        assert reply == Reply(2, "Divide failed on the server (see its log)", None)
        assert "ZeroDivisionError" not in str(reply)  # the log has it, the asker does not
        # and the actor lives on, its state intact
        assert system.ask(calculator, Divide(9, 3, request_id=3), 1) == Reply(3, None, 3)
    finally:
        system.shutdown()


def test_a_batch_is_handled_message_by_message_in_order() -> None:
    system = ActorSystem("simpleSystemBase", transientUnique=True, logDefs=False)
    try:
        calculator = system.createActor(Calculator)
        system.tell(calculator, Batch([Divide(8, 2, request_id=1), Divide(9, 0, request_id=2),
                                       Divide(6, 3, request_id=3)]))
        replies = [system.listen(1) for _ in range(3)]
        assert [(r.request_id, r.error is None, r.value) for r in replies] == \
            [(1, True, 4), (2, False, None), (3, True, 2)]
    finally:
        system.shutdown()


def test_a_message_that_fails_inside_a_numbered_batch_fails_alone() -> None:
    """Let out, the error would make Thespian retry the whole envelope, which the ordering
    drops as a duplicate: what came after the failing message would be lost, silently."""
    system = ActorSystem("simpleSystemBase", transientUnique=True, logDefs=False)
    try:
        calculator = system.createActor(Calculator)
        system.tell(calculator, Sequenced("gw", 0, Batch([Note("a"), Note("bad"), Note("b")])))
        system.tell(calculator, Sequenced("gw", 1, Note("c")))
        assert system.ask(calculator, ReadNotes(request_id=1), 1) == \
            Reply(1, None, ["a", "b", "c"])  # each once, none lost
    finally:
        system.shutdown()
