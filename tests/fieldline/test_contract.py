import base64
import json

import pytest

from fieldline.contract import (
    MAX_EVENT_BYTES,
    MAX_SAMPLE_BYTES,
    Command,
    Detection,
    ModelRef,
    Zone,
    build_sample,
    parse_sample,
    sample_topic,
    Alert,
    ContractError,
    EVENT_SCHEMA,
    DeviceStatus,
    Event,
    json_schemas,
    message_id,
    new_instance_id,
    parse_event,
    parse_payload,
    parse_topic,
    snapshot_topic,
    status_topic,
    subscription,
)
from tests.support.builders import event_dict


def test_event_round_trip_keeps_every_field():
    original = parse_event(json.dumps(event_dict()).encode())
    again = parse_event(original.to_json())
    assert again == original
    assert json.loads(original.to_json())["schema"] == "fieldline.event/1"
    assert again.detections[0].box == (0.1, 0.1, 0.2, 0.2)


def test_status_and_alert_round_trip():
    status = DeviceStatus(state="offline", device="dev-1", site="farm", ts_ms=5)
    assert parse_payload(DeviceStatus, status.to_json()) == status
    alert = Alert(id="a1", ts_ms=1, device="dev-1", site="farm", severity="warning", code="overripe",
                  message="shed-03 has 40% overripe", dedup_key="overripe:shed-03")
    assert parse_payload(Alert, alert.to_json()) == alert


def test_unknown_fields_are_ignored_within_a_major():
    event = parse_event(json.dumps(event_dict(future_field={"x": 1})))
    assert not hasattr(event, "future_field")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"zone": {"kind": "barn", "id": "s1"}}, "zone.kind"),
        ({"detections": [{"label": "ripe", "score": 0.5, "box": [0.1, 0.1, 1.7, 0.2]}]}, "detections.0.box"),
        ({"detections": [{"label": "ripe", "score": 1.5, "box": [0.1, 0.1, 0.2, 0.2]}]}, "detections.0.score"),
        ({"counts": {"ripe": -1}}, "counts"),
        ({"device": "Bad Device"}, "device"),
        ({"schema": "fieldline.event/2"}, "schema"),
        ({"schema": "fieldline.event/2.1"}, "schema"),
        ({"schema": "fieldline.event/1.x"}, "schema"),
        ({"instance": "Not-Hex"}, "instance"),
        ({"kind": "inspection"}, "verdict"),
        ({"seq": "seven"}, "seq"),
    ],
)
def test_malformed_events_name_the_field(overrides, field):
    with pytest.raises(ContractError) as info:
        parse_event(json.dumps(event_dict(**overrides)))
    assert field in str(info.value)


def test_missing_field_is_named():
    data = event_dict()
    del data["ts_ms"]
    with pytest.raises(ContractError, match="ts_ms: Field required"):
        parse_event(json.dumps(data))


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"\xff\xfe", "not UTF-8"),
        (b"{not json", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (b"x" * (MAX_EVENT_BYTES + 1), "limit"),
    ],
)
def test_undecodable_payloads_are_rejected(raw, message):
    with pytest.raises(ContractError, match=message):
        parse_event(raw)


def test_topics_build_and_parse():
    assert status_topic("farm", "dev-1") == "fieldline/v1/farm/dev-1/status"
    assert parse_topic("fieldline/v1/farm/dev-1/events").kind == "events"
    snap = parse_topic(snapshot_topic("farm", "dev-1", "dev-1-3-9"))
    assert (snap.kind, snap.arg) == ("snapshots", "dev-1-3-9")
    reply = parse_topic("fieldline/v1/farm/dev-1/cmd/config/reply")
    assert (reply.kind, reply.arg) == ("cmd_reply", "config")
    assert subscription(shared_group="fieldline-api") == "$share/fieldline-api/fieldline/v1/+/+/#"


@pytest.mark.parametrize(
    "topic",
    ["fieldline/v2/farm/dev/events", "fieldline/v1/Farm/dev/events", "fieldline/v1/farm/dev/unknown",
     "fieldline/v1/farm/dev", "fieldline/v1/farm/dev/snapshots/"],
)
def test_bad_topics_are_rejected(topic):
    with pytest.raises(ContractError):
        parse_topic(topic)


def test_bad_names_cannot_build_topics():
    with pytest.raises(ContractError, match="site"):
        status_topic("farm/../x", "dev-1")


def test_json_schema_covers_every_payload():
    schemas = json_schemas()
    assert set(schemas) == {"event", "status", "alert", "stats", "command", "command_reply", "telemetry", "sample"}
    assert "zone" in schemas["event"]["properties"]
    assert "schema" in schemas["event"]["properties"]


def test_deeply_nested_json_is_a_contract_error_not_a_crash() -> None:
    # found by the malformed-payload flood (tests/e2e/test_api_reliability.py): RecursionError escaped parse_event
    for raw in (b"[" * 5000 + b"]" * 5000, b'{"a": ' * 5000 + b"1" + b"}" * 5000):
        with pytest.raises(ContractError, match="nested too deeply"):
            parse_event(raw)


def test_a_1_0_event_without_instance_and_a_later_minor_are_read():
    legacy = event_dict(schema="fieldline.event/1")
    legacy.pop("instance", None)
    assert parse_event(json.dumps(legacy)).instance is None
    newer = parse_event(json.dumps(event_dict(schema="fieldline.event/1.7", instance="0123456789abcdef")))
    assert newer.instance == "0123456789abcdef"
    assert EVENT_SCHEMA == "fieldline.event/1.1" and Event.model_fields["instance"].default is None


def test_ids_of_two_installs_with_one_name_and_counters_differ():
    first, second = new_instance_id(), new_instance_id()
    assert first != second and len(first) == 16
    assert message_id("box", first, 1, 1) != message_id("box", second, 1, 1)
    assert message_id("box", first, 2, "a3") == f"box-{first}-2-a3"


# ---------------------------------------------------------------- samples (issue 40)

_JPEG = b"\xff\xd8\xff\xe0" + b"x" * 100


def _sample(**overrides):
    fields = dict(id="dev-1-0123456789abcdef-1-s1", device="dev-1", site="farm", camera="cam", ts_ms=1,
                  zone=Zone(kind="shed", id="shed-1"), model=ModelRef(name="tomato", version="1", sha256="ab"),
                  reason="uncertain_score", detections=[Detection(label="ripe", score=0.4, box=(0.1, 0.1, 0.3, 0.3))],
                  width=64, height=48)
    fields.update(overrides)
    return build_sample(jpeg=_JPEG, **fields)


def test_sample_round_trip_and_topic():
    sample = _sample(note="count looks wrong", request_id="r1", reason="on_demand")
    again = parse_sample(sample.to_json())
    assert again == sample and again.jpeg() == _JPEG
    assert json.loads(sample.to_json())["schema"] == "fieldline.sample/1.0"
    topic = parse_topic(sample_topic("farm", "dev-1", sample.id))
    assert (topic.kind, topic.arg) == ("samples", sample.id)
    with pytest.raises(ContractError, match="sample id"):
        sample_topic("farm", "dev-1", "a/b")


@pytest.mark.parametrize("change, field", [
    ({"reason": "bored"}, "reason"),
    ({"image_sha256": "0" * 64}, "image_sha256"),
    ({"image_b64": "!!!!"}, "image_b64"),
    ({"detections": [{"label": "ripe", "score": 0.5, "box": [0.5, 0.1, 0.2, 0.3]}]}, "detections.0.box"),
    ({"schema": "fieldline.sample/2.0"}, "schema"),
])
def test_bad_samples_name_the_field(change, field):
    data = json.loads(_sample().to_json())
    data.update(change)
    with pytest.raises(ContractError, match=field.replace(".", r"\.")):
        parse_sample(json.dumps(data).encode()).jpeg()


def test_sample_size_cap_and_not_a_jpeg():
    big = b"\xff\xd8\xff" + bytes(MAX_SAMPLE_BYTES)
    with pytest.raises(ContractError, match="limit is"):
        parse_sample(_sample().model_copy(update={"image_b64": base64.b64encode(big).decode()}).to_json())
    png = build_sample(jpeg=b"\x89PNG\r\n\x1a\n", **{k: v for k, v in _sample().model_dump().items()
                                                       if k not in ("image_b64", "image_sha256", "schema_")})
    with pytest.raises(ContractError, match="not a JPEG"):
        png.jpeg()


def test_sample_is_a_command_name():
    assert parse_payload(Command, json.dumps({"request_id": "r", "name": "sample", "ts_ms": 1,
                                              "args": {"request_id": "r"}})).name == "sample"
