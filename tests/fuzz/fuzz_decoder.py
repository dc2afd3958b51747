"""Coverage-guided fuzzing of the client frame decoder with atheris (libFuzzer for Python).

Run (pip install '.[fuzz]' first):

    python tests/fuzz/fuzz_decoder.py -dict=tests/fuzz/json.dict -runs=1000000
    python tests/fuzz/fuzz_decoder.py -dict=tests/fuzz/json.dict -max_total_time=600

(msgspec is compiled, so coverage feedback sees only our Python side; the dictionary of JSON
and protocol tokens is what steers the inputs towards real frames.)

Any input must decode to a Message or raise the protocol's own error; anything else (another
exception, a Message without the sender as ``from``, an encoding that does not round-trip) is
a crash that libFuzzer reports with the input that caused it, saved as ``crash-*``.
"""

import sys

import atheris

with atheris.instrument_imports(include=["membrane_rtc.protocol"]):
    from membrane_rtc import protocol

SENDER = "fuzz-sender"


def test_one_input(data: bytes) -> None:
    provider = atheris.FuzzedDataProvider(data)
    as_text = provider.ConsumeBool()
    frame: str | bytes = provider.ConsumeUnicodeNoSurrogates(len(data)) if as_text else \
        provider.ConsumeBytes(len(data))
    try:
        message = protocol.decode_client_frame(frame, SENDER)
    except protocol.InvalidJSON as error:
        assert isinstance(error.details, str)
        return
    except protocol.InvalidMessage:
        return
    assert message.from_ == SENDER
    assert isinstance(message.event, str)
    assert protocol.decode_server_frame(protocol.encode(message)) == message


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
