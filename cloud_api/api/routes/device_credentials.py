"""Device broker credentials for admins: who may log in to Mosquitto, when each device was last heard, revoke.

The credentials live in Mosquitto's passwd/acl files (``devices_provisioning``), in ``Settings.mosquitto_auth_dir``
shared with the broker. What the cloud can know about a device's authentication:

* ``last_message_ms``: the last message of any kind received from it (every message needs a broker login);
* ``last_login_ms``: when it last logged in, from its own ``online`` status, which an agent publishes right
  after every broker login; null while it is offline (the broker's ``offline`` will replaces it).

Mosquitto does not report logins to its clients (only its own log has them), so nothing more precise exists.
A revocation rewrites the files, then runs ``Settings.mosquitto_reload_command`` (SIGHUP to the broker), which
ends the device's open session at once; without that command the old password works until the next reload.
"""

from __future__ import annotations

import subprocess

from fastapi import APIRouter, HTTPException, Path
from pydantic import BaseModel, Field

from cloud_api.api.deps import AdminDep, SettingsDep, StoreDep
from cloud_api.core.config import Settings
from cloud_api.services.devices_provisioning import MosquittoAuthFiles, ProvisioningError
from fieldline.contract import NAME_PATTERN

router = APIRouter(tags=["devices"])

RELOAD_TIMEOUT_S = 15


class DeviceCredentialOut(BaseModel):
    site: str
    device: str
    username: str = Field(description="The device's broker user name")
    last_message_ms: int | None = Field(description="Last message received from the device, epoch ms")
    last_login_ms: int | None = Field(
        description="Its last broker login, from the online status it publishes on connecting; null when offline")


class RevokedOut(BaseModel):
    site: str
    device: str
    reloaded: bool = Field(description="True if the broker was told to re-read its files (the session ended)")
    detail: str


def _files(settings: Settings) -> MosquittoAuthFiles:
    if settings.mosquitto_auth_dir is None:
        raise HTTPException(409, "this API does not manage broker credentials: set mosquitto_auth_dir to the "
                                 "directory of Mosquitto's passwd and acl files")
    return MosquittoAuthFiles(settings.mosquitto_auth_dir)


@router.get("/devices/credentials", response_model=list[DeviceCredentialOut],
            summary="Devices with broker credentials and when each was last heard (admin)",
            responses={409: {"description": "mosquitto_auth_dir is not configured"}})
def list_credentials(_: AdminDep, settings: SettingsDep, store: StoreDep) -> list[DeviceCredentialOut]:
    out = []
    for entry in _files(settings).devices():
        record = store.get_device(entry.site, entry.device)
        online = record is not None and record.state == "online"
        out.append(DeviceCredentialOut(
            site=entry.site, device=entry.device, username=entry.username,
            last_message_ms=record.last_seen_ms if record else None,
            last_login_ms=record.status_ts_ms if online and record else None))
    return out


@router.delete(
    "/devices/{site}/{device}/credentials", response_model=RevokedOut,
    summary="Revoke a device's broker credentials and end its session (admin)",
    responses={404: {"description": "The device has no broker credentials"},
               409: {"description": "mosquitto_auth_dir is not configured"},
               502: {"description": "Revoked in the files, but the reload command failed (see detail)"}},
)
def revoke_credentials(_: AdminDep, settings: SettingsDep,
                       site: str = Path(pattern=NAME_PATTERN), device: str = Path(pattern=NAME_PATTERN)) -> RevokedOut:
    try:
        _files(settings).remove_device(site, device)
    except ProvisioningError as exc:
        raise HTTPException(404, str(exc)) from None
    command = settings.mosquitto_reload_command
    if not command:
        return RevokedOut(site=site, device=device, reloaded=False,
                          detail="revoked in the files; reload the broker (SIGHUP) to end the device's session")
    try:
        subprocess.run(command, check=True, capture_output=True, timeout=RELOAD_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError) as exc:
        raise HTTPException(502, f"revoked in the files, but {command[0]!r} failed: {exc}; reload the broker") from None
    return RevokedOut(site=site, device=device, reloaded=True, detail="revoked; the broker re-read its files")
