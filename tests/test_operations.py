"""The admin operations' one table, and everything that derives from it."""

from __future__ import annotations

import pytest

from membrane_rtc.admin_channel import decode_request, encode_request
from membrane_rtc.cli import build_parser
from membrane_rtc.operations import BY_NAME, OPERATIONS, operation_of, request_fields
from membrane_rtc.runtime.admin_actor import REQUESTS
from membrane_rtc.runtime.messages import ConnectPeer, KickPeer
from membrane_rtc.runtime.supervisor import RoomSupervisor


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: op.name)
def test_each_operation_is_handled_taken_and_carried(operation) -> None:
    assert hasattr(RoomSupervisor, f"receiveMsg_{operation.request.__name__}")
    assert operation.request in REQUESTS  # the admin actor lets it through
    fields = {name: f"value-{name}" for name in request_fields(operation)}
    request = operation.request(**fields)
    assert operation_of(request) is operation
    again = decode_request(encode_request(request))  # the embedded admin channel
    assert type(again) is operation.request and again == request
    args = build_parser().parse_args(
        ["admin", operation.name] + [fields[name] for name in request_fields(operation)
                                     if name not in operation.options])
    assert args.operation == operation.name


def test_requests_outside_the_table_are_refused_clearly() -> None:
    with pytest.raises(ValueError, match="unknown op 'explode'; one of list, create"):
        decode_request(b'{"op": "explode", "args": {}}')
    with pytest.raises(ValueError, match="bad args for kick"):
        decode_request(b'{"op": "kick", "args": {"room": "a"}}')
    with pytest.raises(ValueError, match="args must be an object"):
        decode_request(b'{"op": "list", "args": {"reply_to": "x"}}')
    with pytest.raises(ValueError, match="is not an admin operation"):
        operation_of(ConnectPeer(1, "r", None, "x:Y"))  # type: ignore[arg-type]
    assert BY_NAME["kick"].request is KickPeer
