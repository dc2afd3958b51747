"""Adaptations of Thespian's TCP transport (the multi-process mode), kept in one place.

Where it listens: the one address it advertises, nothing more.

Thespian's TCP transport advertises one IP address per actor (``THESPIAN_BASE_IPADDR``) but
binds every actor socket - the admin port, the supervisor, each room - to all interfaces, and
it speaks pickle: anyone who reaches one of those ports can run code in the server. Thespian
has no setting for the bind address, so this module adapts it in one place: an address that
Thespian would bind on every interface binds the address it advertises instead.

Actor processes are forked from the server process, so the adaptation, made before the actor
system starts, holds in every one of them.

Who it listens to: only those who hold the actor system's key.

Binding loopback keeps other machines out, not other users of this one: Thespian unpickles
whatever reaches an actor's port, and unpickling runs code, so any local process could run
code as the server. Every message (and every acknowledgement) this transport sends therefore
starts with an HMAC-SHA256 of its pickle, keyed by the actor system's key, and what arrives
without the right one is dropped before it is unpickled (:func:`authenticate`). The key is
``$MEMBRANE_RTC_ACTOR_KEY`` (several hosts: the same on each), else one made at random per
server; forked actor processes inherit it, and the server writes it to its state file (0600)
for ``membrane-rtc admin``.

How the gateway sends: :class:`PipelinedSender` overlaps its sends, counts what it holds for
the gateway's backpressure, and lets a message pickle cannot take fail alone.
"""

from __future__ import annotations

import hmac
import importlib
import logging
import os
import pickle
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable

from thespian.system.transport import TransmitIntent
from thespian.system.transport.IPBase import IPActorAddress, thisSystem
from thespian.system.transport.streamBuffer import ackDataErrPacket, ackPacket, toSendBuffer
from thespian.system.utilis import thesplog

from ..config import ACTOR_KEY_VARIABLE
from ..config_checks import MIN_ACTOR_KEY_LENGTH
from .messages import Batch
from .ordering import Sequenced

__all__ = ["ACTOR_ADDRESS_VARIABLE", "DEFAULT_ACTOR_ADDRESS", "advertise", "bind_advertised_only",
           "CONVENTION_CHECKINS", "tune_convention",
           "ACTOR_KEY_VARIABLE", "actor_key", "authenticate", "PipelinedSender", "Failed"]

log = logging.getLogger(__name__)
#: The module (not its class of the same name) whose globals the adaptations below replace.
_tcp: Any = importlib.import_module("thespian.system.transport.TCPTransport")

#: Thespian's environment variable for the IP address actors advertise (and now bind).
ACTOR_ADDRESS_VARIABLE = "THESPIAN_BASE_IPADDR"
#: One machine: actor traffic stays on the loopback interface.
DEFAULT_ACTOR_ADDRESS = "127.0.0.1"

_thespian_bind_args = IPActorAddress.bindArgs


def _bind_args(self: Any) -> tuple[Any, ...]:
    """Thespian binds ``('', port)`` for addresses meant to be reached from outside; bind the
    advertised ``(ip, port)`` (``sockname``) instead."""
    if self.bindname[0] == "" and self.sockname[0]:
        return (self.sockname,)
    return _thespian_bind_args.fget(self)  # type: ignore[no-any-return]


def bind_advertised_only() -> None:
    """Make Thespian's TCP transport bind only the address it advertises (idempotent)."""
    IPActorAddress.bindArgs = property(_bind_args)


def advertise(address: str | None = None) -> str:
    """Set the IP address this process's actors advertise and listen on, and return it.

    ``address`` wins; else an operator's ``THESPIAN_BASE_IPADDR``; else 127.0.0.1. Set in the
    environment so that every actor process, and Thespian itself, sees the same one.
    """
    chosen = address or os.environ.get(ACTOR_ADDRESS_VARIABLE) or DEFAULT_ACTOR_ADDRESS
    os.environ[ACTOR_ADDRESS_VARIABLE] = chosen
    thisSystem.add_local_addr(chosen)  # Thespian read the variable once, at its import
    bind_advertised_only()
    return chosen


#: Thespian's convention check-ins, set in the environment it reads them from (``M:SS`` and a
#: count) unless the operator did: how often each member registers again with every leader,
#: and how many missed registrations make a member lost. Thespian's defaults (7:22 and 3)
#: mean a leader that comes back learns of the room hosts only minutes later (they tell it
#: when they register again); every 10 s here. A member is lost only after 30 misses (5 min,
#: Thespian's own view; hysteresis delays repeated sends, and missed check-ins of live hosts
#: would make them unplaceable): the supervisors watch the hosts and each other themselves,
#: within seconds (membrane_rtc.runtime.failover).
CONVENTION_CHECKINS = {"CONVENTION_REREGISTRATION_PERIOD": "0:10",
                       "CONVENTION_REGISTRATION_MISS_MAX": "30"}


def tune_convention() -> dict[str, str]:
    """Set Thespian's convention check-ins (:data:`CONVENTION_CHECKINS`, unless the
    environment has them) before its actor system starts; return the values in force."""
    for name, value in CONVENTION_CHECKINS.items():
        os.environ.setdefault(name, value)
    convention: Any = importlib.import_module("thespian.system.admin.convention")
    getenvdef = convention.getenvdef
    # Read once at its import (maybe before this): read again, as at its import.
    convention.CONVENTION_REREGISTRATION_PERIOD = getenvdef(
        "CONVENTION_REREGISTRATION_PERIOD", convention.str_to_timedelta,
        convention.CONVENTION_REREGISTRATION_PERIOD)
    convention.CONVENTION_REGISTRATION_MISS_MAX = getenvdef(
        "CONVENTION_REGISTRATION_MISS_MAX", int, convention.CONVENTION_REGISTRATION_MISS_MAX)
    return {name: os.environ[name] for name in CONVENTION_CHECKINS}


#: Bytes of the HMAC-SHA256 tag before each pickle.
TAG_BYTES = 32
#: At most one log line per this many seconds about refused messages (a flood stays quiet).
REFUSAL_LOG_INTERVAL = 10.0

#: The key this process made, when the environment gives none (one per process).
_made_key: str | None = None


def actor_key() -> str:
    """This process's actor-system key: ``$MEMBRANE_RTC_ACTOR_KEY``, else one made at random
    (the same for the life of the process). ValueError if the variable's is too short."""
    global _made_key
    given = os.environ.get(ACTOR_KEY_VARIABLE)
    if given:
        if len(given) < MIN_ACTOR_KEY_LENGTH:
            raise ValueError(f"${ACTOR_KEY_VARIABLE} must be at least {MIN_ACTOR_KEY_LENGTH} "
                             "characters")
        return given
    if _made_key is None:
        _made_key = secrets.token_urlsafe(32)
    return _made_key


class _Refusals:
    """Counts the messages dropped for a wrong or missing tag, and says so now and then: in
    the process that installed the key through ``logging`` (its log goes to stderr), in the
    actor processes forked from it through Thespian's own log file (logging from inside
    Thespian's transport would re-enter it)."""

    def __init__(self, quiet: bool) -> None:
        self.count = 0
        self.logged_at = float("-inf")
        self.logging_pid = os.getpid()
        self.quiet = quiet

    def add(self) -> None:
        self.count += 1
        if self.quiet:
            return
        now = time.monotonic()
        if now - self.logged_at < REFUSAL_LOG_INTERVAL:
            return
        text = (f"dropped {self.count} message(s) without this actor system's key, unread "
                "(another local user, or a host with another $" + ACTOR_KEY_VARIABLE + ")")
        self.count, self.logged_at = 0, now
        if os.getpid() == self.logging_pid:
            log.warning("%s", text)
        else:
            thesplog("%s", text, level=logging.WARNING)


class _Signed:
    """Takes the place of the ``pickle`` module in Thespian's TCP transport (its module-level
    ``serializer``): ``dumps`` puts the HMAC-SHA256 of the pickle before it, ``loads`` checks
    it before unpickling anything."""

    def __init__(self, key: bytes, quiet: bool = False) -> None:
        self._key = key
        self.refusals = _Refusals(quiet)

    def dumps(self, value: Any) -> bytes:
        body = pickle.dumps(value)
        return hmac.digest(self._key, body, "sha256") + body

    def loads(self, data: bytes) -> Any:
        body = data[TAG_BYTES:]
        if not hmac.compare_digest(data[:TAG_BYTES], hmac.digest(self._key, body, "sha256")):
            self.refusals.add()
            # Thespian's own "bad data" answer: received, it drops the data and answers with it
            # (then closes the socket); as an acknowledgement, its send counts as failed.
            return ackDataErrPacket
        return pickle.loads(body)


def authenticate(key: str, quiet: bool = False) -> None:
    """Make Thespian's TCP transport, in this process and the actor processes it forks from
    now on, sign what it sends and drop, unread, what arrives unsigned or signed with another
    key (one key per process: the last one given). ``quiet``: do not log the drops (a
    client that reports a failure its own way)."""
    signed = _Signed(key.encode(), quiet)
    _tcp.serializer = signed
    _tcp.ackMsg = toSendBuffer(ackPacket, signed.dumps)
    _tcp.ackDataErrMsg = toSendBuffer(ackDataErrPacket, signed.dumps)


#: Bound on how long sends may stay unacknowledged, as Thespian bounds one ``tell``.
SEND_TIMEOUT = 10.0
#: How long one step of the transport may wait for acknowledgements before the sender looks
#: for new work again (seconds): the most a message waits behind sends still in flight.
SEND_STEP = 0.001


@dataclass
class Failed:
    """Messages a send could not deliver: ``unsendable`` ones were dropped before sending
    (pickle cannot take them), the others the transport gave up on (actor gone, timeout)."""

    messages: list[Any]
    reason: str
    unsendable: bool


def leaves(message: Any) -> list[Any]:
    """The messages inside the envelopes (:class:`~.messages.Batch`, :class:`Sequenced`)."""
    if isinstance(message, Sequenced):
        return leaves(message.message)
    if isinstance(message, Batch):
        return [leaf for each in message.messages for leaf in leaves(each)]
    return [message]


def pickles(message: Any) -> bool:
    """Whether pickle takes ``message`` (what Thespian's TCP transport sends)."""
    try:
        pickle.dumps(message)
    except Exception:
        return False
    return True


def salvage(message: Any, keep: Callable[[Any], bool] = pickles) -> tuple[Any, list[Any]]:
    """``message`` with only the messages inside it that ``keep`` accepts: (what is left, or
    None if nothing; the messages left out). Envelopes stay, emptied if need be: a
    :class:`Sequenced` number that never arrived would hold back everything after it."""
    if isinstance(message, Sequenced):
        inner, dropped = salvage(message.message, keep)
        return Sequenced(message.channel, message.seq,
                         Batch([]) if inner is None else inner, message.origin), dropped
    if isinstance(message, Batch):
        kept: list[Any] = []
        dropped = []
        for each in message.messages:
            left, lost = salvage(each, keep)
            dropped += lost
            if left is not None:
                kept.append(left)
        return Batch(kept), dropped
    return (message, []) if keep(message) else (None, [message])


def _nothing(message: Any) -> bool:
    return False


class PipelinedSender:
    """Sends through a multi-process ``ActorSystem`` handle without waiting for each send.

    ``ActorSystem.tell`` sends one message and waits for the receiver's acknowledgement before
    it returns, so everything queued meanwhile, for any actor, waits behind it. Here sends to
    different actors overlap, and each actor has one send in flight at a time: what comes for
    it meanwhile is gathered and goes as one :class:`~.messages.Batch` once that send is
    acknowledged - fast when messages come one at a time, batched when they come faster than
    an actor takes them. (Thespian's external handle has no public call for this; scheduling a
    ``TransmitIntent`` and running the transport are the two steps its own ``tell`` takes.)

    Each send carries a ``token``; ``taken(token)`` is called once the send carrying it is
    over (acknowledged, given up, or dropped): until then the caller counts its messages as
    waiting (the gateway's backpressure). A message that cannot be serialised fails alone:
    the others sent with it still go.
    """

    def __init__(self, system: Any, taken: Callable[[Any], None] = lambda token: None) -> None:
        self._base = system._systemBase
        self._taken = taken
        #: Per receiver (its address key): messages, and their tokens, waiting for its send
        #: in flight to end.
        self._waiting: dict[str, tuple[Any, list[Any], list[Any]]] = {}
        #: Per receiver with a send in flight: the tokens that send carries.
        self._in_flight: dict[str, list[Any]] = {}
        self._failures: list[Failed] = []

    @property
    def busy(self) -> bool:
        """Sends are still in flight."""
        return bool(self._in_flight)

    def send(self, sends: list[tuple[Any, Any, Any]]) -> None:
        """Send every ``(address, message, token)``, in order per receiver. Never raises."""
        for target, message, token in sends:
            key = target.actorAddressString
            if key in self._in_flight:
                _, messages, tokens = self._waiting.setdefault(key, (target, [], []))
                messages.append(message)
                tokens.append(token)
            else:
                self._transmit(key, target, message, [token])

    def step(self, seconds: float = SEND_STEP) -> list[Failed]:
        """Run the transport for at most ``seconds``; return the sends that failed since."""
        if self._in_flight:
            self._base._run_transport(seconds, txonly=True)
        failures, self._failures = self._failures, []
        return failures

    def _transmit(self, key: str, target: Any, message: Any, tokens: list[Any]) -> None:
        try:
            self._schedule(key, target, message, tokens)
            return
        except Exception as exc:  # pickle could not take something in it (or Thespian balked)
            reason = f"{type(exc).__name__}: {exc}"
        # Send what pickle takes alone; failing that, the bare envelopes.
        for keep in (pickles, _nothing):
            kept, dropped = salvage(message, keep)
            if kept is None or (isinstance(kept, Batch) and not kept.messages):
                break  # nothing left worth sending
            try:
                self._schedule(key, target, kept, tokens)
            except Exception as exc:
                reason = f"{type(exc).__name__}: {exc}"
                continue
            if dropped:
                self._failures.append(Failed(dropped, reason, unsendable=True))
            return
        self._failures.append(Failed(leaves(message), reason, unsendable=True))
        self._over(key, tokens)

    def _schedule(self, key: str, target: Any, message: Any, tokens: list[Any]) -> None:
        self._in_flight[key] = tokens
        done = lambda result, intent: self._done(key, result, intent)  # noqa: E731
        try:
            self._base.transport.scheduleTransmit(None, TransmitIntent(
                target, message, onSuccess=done, onError=done,
                maxPeriod=timedelta(seconds=SEND_TIMEOUT)))
        except BaseException:
            if self._in_flight.get(key) is tokens:
                del self._in_flight[key]
            raise

    def _done(self, key: str, result: Any, intent: Any) -> None:
        if not result:
            self._failures.append(Failed(leaves(intent.message),
                                         f"to {intent.targetAddr}: {result}", unsendable=False))
        self._over(key, self._in_flight.pop(key, []))

    def _over(self, key: str, tokens: list[Any]) -> None:
        """The send carrying ``tokens`` is over: credit them, send what waited meanwhile."""
        for token in tokens:
            self._taken(token)
        waiting = self._waiting.pop(key, None)
        if waiting is not None:
            target, messages, next_tokens = waiting
            self._transmit(key, target, messages[0] if len(messages) == 1 else Batch(messages),
                           next_tokens)
