"""FieldLine cloud API: MQTT ingest, storage and the REST API (DESIGN.md section 4)."""
