"""Home Assistant MQTT discovery: every camera's count per label appears as a sensor.

Discovery configs and states are retained, so Home Assistant picks them up whenever it (re)starts; the
sensors go unavailable with the agent's retained offline status (its last will).
"""

from __future__ import annotations

import json

from edge_agent.config import AgentConfig
from fieldline.contract import home_assistant_config_topic, home_assistant_state_topic, status_topic


def discovery_messages(config: AgentConfig, labels: tuple[str, ...], agent_version: str) -> list[tuple[str, bytes]]:
    device = {
        "identifiers": [f"fieldline_{config.site}_{config.device}"],
        "name": f"FieldLine {config.device}",
        "manufacturer": "FieldLine",
        "model": "edge agent",
        "sw_version": agent_version,
    }
    messages = []
    for camera in config.cameras:
        for label in labels:
            object_id = f"fieldline_{config.site}_{config.device}_{camera.name}_{label}".replace("-", "_").lower()
            payload = {
                "name": f"{camera.zone.id} {camera.name} {label}",
                "unique_id": object_id,
                "state_topic": home_assistant_state_topic(config.site, config.device, camera.name),
                "value_template": f"{{{{ value_json.counts['{label}'] | default(0) }}}}",
                "unit_of_measurement": "fruits" if camera.zone.kind == "shed" else "parts",
                "state_class": "measurement",
                "availability_topic": status_topic(config.site, config.device),
                "availability_template": "{{ value_json.state }}",
                "payload_available": "online",
                "payload_not_available": "offline",
                "device": device,
            }
            messages.append((home_assistant_config_topic(config.home_assistant.discovery_prefix, object_id),
                             json.dumps(payload).encode()))
    return messages


def state_message(config: AgentConfig, camera: str, zone_id: str, counts: dict[str, int],
                  ts_ms: int) -> tuple[str, bytes]:
    return (home_assistant_state_topic(config.site, config.device, camera),
            json.dumps({"zone": zone_id, "counts": counts, "ts_ms": ts_ms}).encode())
