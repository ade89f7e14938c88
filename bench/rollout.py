"""Staged rollout drill on a real fleet: how long a good model takes to reach every device, and a bad canary to
roll back.

    python bench/rollout.py [--devices 20] [--processes 3] [--fps 1] [--canary 1] [--batch 5]
                            [--hold 10] [--settle 6] [--samples 5]

Real Mosquitto, the API as its own process (tests/support/api_process.py) and ``--devices`` real edge agents
with synthetic 320x240 cameras (tests/support/fleet_rig.py): ``--processes`` of them as ``fieldline edge run``
OS processes, the rest in this process. Every agent starts on the zoo's INT8 tomato model.

1. rollout: the FP32 tomato model to site ``farm`` (canary, then batches, each device's gate held ``--hold``
   s); timed from POST /deployments to every device reporting the new sha256, and to the deployment's
   ``succeeded``.
2. rollback: a model with garbage outputs (tests/support/bad_models.py: 48 extra confident boxes per frame)
   to the same site; timed from POST to the canary back on the good model (deployment ``failed``).
   ``bad_model_loaded_elsewhere`` counts the devices other than the canary that were sent the bad model or
   downloaded it (must be 0).
3. slow: a model about ten times slower per frame (bad_models.slow_model); at ``--fps 1`` the camera rate caps
   the frame rate, so the gate's p95 latency check is what stops it; timed from POST to ``failed``.
4. config: a config version (model NMS and snapshot budget) to every device, timed to ``succeeded``; then one
   that miscounts (``conf_threshold: 0.01``), timed from POST to its canary back on the previous config.

The last line is JSON: ``{rollout_s, rollback_s, devices, bad_model_loaded_elsewhere, ...}``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.api_process import ApiProcess  # noqa: E402
from tests.support.bad_models import garbage_model, slow_model  # noqa: E402
from tests.support.fleet_rig import BASE_MODEL, Api, FleetRig  # noqa: E402
from tests.support.live_api import wait_until  # noqa: E402
from tests.support.mosquitto import MosquittoBroker  # noqa: E402

GOOD_MODEL = ROOT / "models" / "zoo" / "tomato-ripeness.onnx"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=20)
    parser.add_argument("--processes", type=int, default=3, help="agents as OS processes (the rest in-process)")
    parser.add_argument("--fps", type=float, default=1.0, help="camera frames per second")
    parser.add_argument("--canary", type=int, default=1)
    parser.add_argument("--batch", type=int, default=5)
    parser.add_argument("--hold", type=float, default=10.0, help="gate hold time per device, seconds")
    parser.add_argument("--settle", type=float, default=6.0, help="fps/counts read from this long after load")
    parser.add_argument("--samples", type=int, default=5, help="stats messages the gate needs after the settle")
    return parser.parse_args(argv)


def deploy(client: Api, sha: str, args: argparse.Namespace, **extra: object) -> tuple[str, float]:
    # a good model's counts over a short hold can differ by half from its last hour's (synthetic sheds), and
    # devices loading at once slow each other's first frames: the gate allows both, far from the bad ones
    body = {"sha256": sha, "target": {"site": "farm"}, "canary": args.canary, "batch_size": args.batch,
            "hold_s": args.hold, "settle_s": args.settle, "stats_grace_s": 30, "command_timeout_s": 120,
            "min_stats_samples": args.samples, "min_fps_pct": 50, "max_latency_pct": 300, "max_count_jump_pct": 150,
            **extra}
    started = time.monotonic()
    return client.ok("POST", "/deployments", json=body)["id"], started


def bad_loaded_elsewhere(client: Api, sha: str, canary: str, devices: list[str]) -> int:
    downloads = {a["actor"] for a in client.ok("GET", "/audit", params={"target": sha, "limit": 1000})
                 if a["action"] == "model.download"}
    sent = set()
    for device in devices:
        commands = client.ok("GET", f"/devices/{device}/commands")
        if any(c["name"] == "model" and c["args"].get("sha256") == sha for c in commands):
            sent.add(device)
    return len((downloads | sent) - {canary})


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="rollout-bench-") as tmp_dir, MosquittoBroker() as broker:
        tmp = Path(tmp_dir)
        (tmp / "api").mkdir()
        (tmp / "edge").mkdir()
        api = ApiProcess(tmp / "api", broker, client_id="rollout-bench-api")
        api.start()
        rig = FleetRig(tmp / "edge", broker.port, processes=args.processes,
                       in_process=args.devices - args.processes, fps=args.fps)
        try:
            began = time.monotonic()
            rig.start()
            client = Api(api.url, api.token)
            client.wait_fleet(rig.devices, timeout=120)
            fleet_up_s = time.monotonic() - began
            good = client.push(GOOD_MODEL)
            bad = client.push(garbage_model(BASE_MODEL, tmp / "garbage.onnx"))

            deployment_id, started = deploy(client, good, args)
            wait_until(lambda: all(d["sha256"] == good for d in client.fleet().values()), timeout=600, interval=0.2,
                       what="every device on the new model")
            rollout_s = time.monotonic() - started
            done = client.wait_state(deployment_id, ("succeeded", "failed"), timeout=300)
            succeeded_s = time.monotonic() - started
            stages = done["stages"]

            deployment_id, started = deploy(client, bad, args, min_fps_pct=30, max_latency_pct=1000)
            failed = client.wait_state(deployment_id, ("failed",), timeout=300)
            rollback_s = time.monotonic() - started
            canary = next(f"{d['site']}/{d['device']}" for d in failed["devices"] if d["stage"] == 0)
            elsewhere = bad_loaded_elsewhere(client, bad, canary, rig.devices)

            slow = client.push(slow_model(BASE_MODEL, tmp / "slow.onnx", matmuls=20))
            deployment_id, started = deploy(client, slow, args)
            slow_failed = client.wait_state(deployment_id, ("failed",), timeout=300)
            slow_s = time.monotonic() - started
            elsewhere += bad_loaded_elsewhere(client, slow, canary, rig.devices)
            on_good = sum(d["sha256"] == good for d in client.fleet().values())

            config = client.push_config("bench", {"model": {"iou_threshold": 0.45},
                                                  "snapshot_budget_bytes_per_min": 1_500_000})
            deployment_id, started = deploy(client, config, args, kind="config")
            config_done = client.wait_state(deployment_id, ("succeeded", "failed"), timeout=600)
            config_s = time.monotonic() - started
            miscount = client.push_config("bench", {"model": {"conf_threshold": 0.01}})
            deployment_id, started = deploy(client, miscount, args, kind="config", min_fps_pct=20,
                                            max_latency_pct=1000)
            config_failed = client.wait_state(deployment_id, ("failed",), timeout=300)
            config_rollback_s = time.monotonic() - started
        finally:
            rig.stop()
            api.stop()

    rows = [
        ("devices (processes + in-process)", f"{args.devices} ({args.processes} + {args.devices - args.processes})"),
        ("fleet up (all online with stats)", f"{fleet_up_s:.1f} s"),
        ("stages (canary + batches of {})".format(args.batch), str(stages)),
        ("gate hold per device", f"{args.hold:g} s"),
        ("good model: start -> all devices on it", f"{rollout_s:.1f} s"),
        ("good model: start -> deployment " + done["state"], f"{succeeded_s:.1f} s"),
        ("garbage model: start -> canary rolled back", f"{rollback_s:.1f} s"),
        ("reason", failed["reason"][:90]),
        ("10x slower model: start -> canary rolled back", f"{slow_s:.1f} s"),
        ("reason", slow_failed["reason"][:90]),
        ("devices that got a bad model besides the canary", str(elsewhere)),
        ("devices on the good model", f"{on_good}/{args.devices}"),
        ("config version: start -> deployment " + config_done["state"], f"{config_s:.1f} s"),
        ("miscounting config: start -> canary rolled back", f"{config_rollback_s:.1f} s"),
        ("reason", config_failed["reason"][:90]),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print(json.dumps({"rollout_s": round(rollout_s, 1), "rollback_s": round(rollback_s, 1), "devices": args.devices,
                      "bad_model_loaded_elsewhere": elsewhere, "succeeded_s": round(succeeded_s, 1),
                      "slow_rollback_s": round(slow_s, 1), "config_rollout_s": round(config_s, 1),
                      "config_rollback_s": round(config_rollback_s, 1), "config_state": config_done["state"],
                      "slow_reason": slow_failed["reason"][:120],
                      "stages": stages, "hold_s": args.hold, "fps": args.fps, "processes": args.processes,
                      "on_good_model": on_good}))
    ok = elsewhere == 0 and done["state"] == "succeeded" and on_good == args.devices
    return 0 if ok and config_done["state"] == "succeeded" and "latency" in slow_failed["reason"] else 1


if __name__ == "__main__":
    sys.exit(main())
