"""Settings: schema rules that would otherwise fail late at runtime."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from cloud_api.core.config import Settings


def test_db_path_defaults_into_data_dir(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path).database_file == tmp_path / "fieldline.db"
    assert Settings(data_dir=tmp_path, db_path=tmp_path / "x.db").database_file == tmp_path / "x.db"


@pytest.mark.parametrize(
    ("values", "needle"),
    [
        ({"shared_group": "api"}, "shared_group needs mqtt_protocol '5'"),
        ({"mqtt_protocol": "4"}, "mqtt_protocol"),
        ({"mqtt_password": "secret"}, "mqtt_username"),
        ({"api_tokens": [""]}, "api_tokens"),
        ({"api_token": "x"}, "api_token"),  # typo: extra fields are forbidden
        ({"mqtt_reconnect_min_s": 5, "mqtt_reconnect_max_s": 1}, "mqtt_reconnect_max_s"),
    ],
)
def test_invalid_settings_name_the_field(values: dict[str, object], needle: str) -> None:
    with pytest.raises(ValidationError, match=needle):
        Settings(**values)


def test_every_field_is_described() -> None:
    missing = [name for name, field in Settings.model_fields.items() if not field.description]
    assert missing == []
    assert Settings(shared_group="fieldline-api", mqtt_protocol="5").shared_group == "fieldline-api"


def test_server_gc_tuning_freezes_start_up_objects_and_raises_the_young_threshold() -> None:
    import gc

    from cloud_api.core.gc_tuning import YOUNG_THRESHOLD, tune_for_server

    before = gc.get_threshold()
    try:
        tune_for_server()
        assert gc.get_freeze_count() > 1000  # the modules and objects loaded so far
        assert gc.get_threshold() == (YOUNG_THRESHOLD, before[1], before[2])
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_blank_zone_names_are_rejected(tmp_path) -> None:
    from pydantic import ValidationError

    from cloud_api.core.config import Settings

    with pytest.raises(ValidationError, match="zone_names: the name of 'line-2' must be 1..100 characters"):
        Settings(data_dir=tmp_path, zone_names={"line-1": "Press 1", "line-2": "  "})


def test_a_shed_with_no_pick_ready_labels_is_rejected(tmp_path) -> None:
    from pydantic import ValidationError

    from cloud_api.core.config import Settings

    with pytest.raises(ValidationError, match="pick_ready_labels_by_shed: 'shed-3' needs at least one label"):
        Settings(data_dir=tmp_path, pick_ready_labels_by_shed={"shed-3": []})
