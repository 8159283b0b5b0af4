"""The publish path's AMQP encodings write pamqp's bytes exactly, for every kind of value, and
read a Basic.Ack as pamqp does (no broker needed: this is the codec alone; the publish itself
is checked against the real RabbitMQ in test_amqp_connection.py and test_submit_path.py)."""

import datetime
import uuid

import pytest
from pamqp import commands, encode, frame, header
from pamqp.body import ContentBody

from cerebro.clients import amqpcodec
from cerebro.taskqueue.publisher import task_headers, task_message

TASK_ID = str(uuid.uuid4())
CELERY_HEADERS = task_headers(TASK_ID, "cerebro.run", '["m", "f"]', "gen1@host")
VALUES = [None, "", "text", "ünïcødé ✓", "x" * 300, 0, 1, -1, 127, 128, -128, -129, 32767,
          32768, -32768, -32769, 65535, 65536, 2 ** 31, -2 ** 31 - 1, 2 ** 40, True, False,
          1.5, [], [None, None], [1, "a", None, [2]], {}, {"a": 1, "b": {"c": None}},
          datetime.datetime(2026, 11, 30, 12, 0, 0), bytearray(b"raw")]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_every_kind_of_value_is_encoded_as_pamqp_does(value):
    assert amqpcodec.encode_value(value) == encode.encode_table_value(value)


@pytest.mark.parametrize("table", [{}, CELERY_HEADERS, {"z": 1, "a": 2, "m": [1, {"k": "v"}]},
                                   {f"k{i}": value for i, value in enumerate(VALUES)},
                                   {"long-" * 40: 1, "short": 2}],
                         ids=["empty", "celery", "unsorted", "every-kind", "long-key"])
def test_tables_are_encoded_as_pamqp_does(table):
    assert amqpcodec.encode_table(table) == encode.field_table(table)


@pytest.mark.parametrize("argsrepr", ["", '["m", "f", {"x": 1}]', "ünï ✓" * 100, "r" * 5000])
def test_a_task_messages_headers_are_celerys_table_as_pamqp_writes_it(argsrepr):
    task_id = str(uuid.uuid4())
    headers, body = task_message(task_id, "cerebro.run", b'["m","f",{},{}]', argsrepr, "o@h")
    expected = task_headers(task_id, "cerebro.run", argsrepr, "o@h")
    assert expected["argsrepr"] == argsrepr[:1024]  # Celery's argsrepr_maxsize
    assert headers.data == encode.field_table(expected)
    assert amqpcodec.encode_properties(headers=headers).data == \
        commands.Basic.Properties(headers=expected).marshal()


def test_an_unknown_type_is_refused_as_pamqp_refuses_it():
    with pytest.raises(TypeError, match="bad error"):
        amqpcodec.encode_table({"bad": object()})


@pytest.mark.parametrize("fields", [
    {"content_type": "application/json", "content_encoding": "utf-8", "delivery_mode": 2,
     "priority": 0, "correlation_id": TASK_ID, "message_id": TASK_ID, "headers": CELERY_HEADERS},
    {"content_type": "application/json", "delivery_mode": 2, "message_id": "m"},
    {"content_type": "", "headers": {}, "priority": 9},
    {},
], ids=["task", "plain", "empty-values", "none"])
def test_properties_are_encoded_as_pamqp_does(fields):
    encoded = amqpcodec.encode_properties(**fields)
    assert encoded.data == commands.Basic.Properties(**fields).marshal()
    assert encoded.message_id == fields.get("message_id")


def test_the_frames_are_pamqps():
    props = commands.Basic.Properties(content_type="application/json", message_id="m",
                                      headers=CELERY_HEADERS)
    publish = commands.Basic.Publish(exchange="", routing_key="q", mandatory=True)
    assert amqpcodec.method_frame(publish, 1) == frame.marshal(publish, 1)
    assert amqpcodec.header_frame(1, 1234, props.marshal()) == frame.marshal(
        header.ContentHeader(0, 1234, props), 1)
    assert amqpcodec.frame(3, 1, b"body") == frame.marshal(ContentBody(b"body"), 1)


@pytest.mark.parametrize("tag, multiple", [(1, False), (2 ** 40 + 7, True)])
def test_a_basic_ack_is_read_as_pamqp_reads_it(tag, multiple):
    data = frame.marshal(commands.Basic.Ack(delivery_tag=tag, multiple=multiple), 1)
    assert amqpcodec.ack_of(data) == (tag, multiple)
    _, _, parsed = frame.unmarshal(data)
    assert (parsed.delivery_tag, parsed.multiple) == (tag, multiple)


@pytest.mark.parametrize("other", [commands.Basic.Nack(delivery_tag=1),
                                   commands.Basic.Return(reply_code=312, reply_text="NO_ROUTE",
                                                         exchange="", routing_key="q"),
                                   commands.Channel.Close(reply_code=406, reply_text="x",
                                                          class_id=0, method_id=0)],
                         ids=lambda f: type(f).__name__)
def test_any_other_frame_is_left_to_pamqp(other):
    assert amqpcodec.ack_of(frame.marshal(other, 1)) is None


@pytest.mark.parametrize("task_id", [TASK_ID, "t", "ü" * 60], ids=["uuid", "short", "non-ascii"])
def test_the_task_properties_template_writes_what_pamqp_writes(task_id):
    """The publisher's properties (fixed content type, encoding, delivery mode and priority;
    the ids and headers per message) are pamqp's Basic.Properties, byte for byte."""
    from cerebro.taskqueue.publisher import _TASK_FIXED, _TASK_PROPERTIES
    headers, _ = task_message(task_id, "cerebro.run", b"[]", "[]", "o@h")
    encoded = _TASK_PROPERTIES.encode(headers, task_id, task_id)
    expected = commands.Basic.Properties(
        **_TASK_FIXED, correlation_id=task_id, message_id=task_id,
        headers=task_headers(task_id, "cerebro.run", "[]", "o@h")).marshal()
    assert encoded.data == expected and encoded.message_id == task_id
