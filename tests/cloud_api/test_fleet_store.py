"""Fleet tables through the store on SQLite and PostgreSQL: model registry, commands and their replies or
time-outs, the append-only audit log, device tags, the download-token key, harvest done marks."""

from __future__ import annotations

from typing import Any

from cloud_api.fleet.records import AuditRecord, CommandRecord, ModelRecord
from cloud_api.storage.records import HarvestDoneRecord
from fieldline.contract import CommandReply
from tests.cloud_api.cloudapi_builders import SITE, T0


def audit(action: str, target: str, result: str = "ok", ts_ms: int = T0) -> AuditRecord:
    return AuditRecord(id=0, ts_ms=ts_ms, actor="olga", role="operator", action=action, target_kind="device",
                       target=target, result=result, detail={"n": 1})


def command(command_id: str, deadline_ms: int) -> CommandRecord:
    return CommandRecord(id=command_id, site=SITE, device="edge-1", name="snapshot", args={"camera": "cam-1"},
                         state="pending", created_by="olga", created_ms=T0, deadline_ms=deadline_ms)


def test_models_commands_audit_tags_and_keys(store: Any) -> None:
    model = ModelRecord(sha256="ab" * 32, name="tomato", version="1.0", decoder="yolo", labels=["ripe", "green"],
                        input_size=320, train_data_hash=None, fieldline_native=True, size_bytes=1234,
                        metadata={"task": "detect"}, card="# card", figures={"map50": 0.9},
                        uploaded_by="olga", uploaded_ms=T0)
    assert store.add_model(model, audit("model.upload", model.sha256)) is True
    assert store.add_model(model, audit("model.upload", model.sha256)) is False
    assert store.get_model(model.sha256) == model and store.list_models() == [model]

    store.add_command(command("c1", T0 + 10_000), audit("command.create", f"{SITE}/edge-1", "pending"))
    store.add_command(command("c2", T0 + 5_000), audit("command.create", f"{SITE}/edge-1", "pending"))
    assert store.mark_command_sent("c1", T0 + 1) and not store.mark_command_sent("nope", T0 + 1)
    assert [c.id for c in store.open_commands(T0 + 2)] == ["c1", "c2"]
    reply = CommandReply(request_id="c1", ok=True, ts_ms=T0 + 3, result={"snapshot": "s1"})
    assert store.write_command_reply(SITE, "edge-1", "snapshot", reply, T0 + 3) is True
    assert store.write_command_reply(SITE, "edge-1", "snapshot", reply, T0 + 4) is False  # the first one counts
    (expired,) = store.expire_commands(T0 + 6_000)
    assert expired.id == "c2" and store.get_command("c2").state == "timed_out"
    c1 = store.get_command("c1")
    assert (c1.state, c1.sent_ms, c1.attempts, c1.reply["result"]) == ("ok", T0 + 1, 1, {"snapshot": "s1"})
    assert [c.id for c in store.list_commands(SITE, "edge-1")] == ["c2", "c1"]

    entries = store.list_audit(target=f"{SITE}/edge-1")
    assert [(e.action, e.result) for e in entries] == [
        ("command.snapshot.result", "timed_out"), ("command.snapshot.result", "ok"),
        ("command.create", "pending"), ("command.create", "pending")]
    assert [e.id for e in store.list_audit(before_id=entries[1].id, limit=1)] == [entries[2].id]
    assert store.add_audit(audit("device.tag", f"{SITE}/edge-1")) == entries[0].id + 1

    store.set_device_tags(SITE, "edge-1", ["north", "canary", "north"])
    assert store.device_tags() == {(SITE, "edge-1"): ["canary", "north"]}
    assert store.devices_with_tag("canary") == [(SITE, "edge-1")]
    key = store.fleet_key("downloads")
    assert len(key) == 32 and store.fleet_key("downloads") == key

    mark = store.mark_shed_done(HarvestDoneRecord("2026-01-05", "shed-1", "olga", T0))
    assert store.mark_shed_done(HarvestDoneRecord("2026-01-05", "shed-1", "ivan", T0 + 1)) == mark
    assert store.list_done("2026-01-05") == [mark]
    assert store.unmark_shed_done("2026-01-05", "shed-1") and store.list_done("2026-01-05") == []
