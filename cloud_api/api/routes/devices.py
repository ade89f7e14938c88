from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, HTTPException, Path

from fieldline.contract import NAME_PATTERN

from cloud_api.api.deps import StoreDep
from cloud_api.api.schemas import DeviceAuditOut, DeviceOut

router = APIRouter(tags=["devices"])

SitePath = Path(pattern=NAME_PATTERN, description="Site id")
DevicePath = Path(pattern=NAME_PATTERN, description="Device name within the site")


@router.get("/devices", response_model=list[DeviceOut], summary="Devices with their online/offline state")
def list_devices(store: StoreDep) -> list[DeviceOut]:
    return [DeviceOut.model_validate(record, from_attributes=True) for record in store.list_devices()]


@router.get("/devices/{site}/{device}", response_model=DeviceOut, summary="One device, identified by site and name",
            responses={404: {"description": "No such device at that site"}})
def get_device(store: StoreDep, site: str = SitePath, device: str = DevicePath) -> DeviceOut:
    record = store.get_device(site, device)
    if record is None:
        raise HTTPException(404, f"no device {device!r} at site {site!r}")
    return DeviceOut.model_validate(record, from_attributes=True)


@router.get(
    "/devices/{site}/{device}/audit", response_model=DeviceAuditOut,
    summary="Seq audit of a device: lost events (gaps) and repeats per install and boot",
    responses={404: {"description": "No events stored from that device"}},
)
def device_audit(store: StoreDep, site: str = SitePath, device: str = DevicePath) -> DeviceAuditOut:
    audit = store.device_audit(site, device)
    if audit is None:
        raise HTTPException(404, f"no events stored from device {device!r} at site {site!r}")
    return DeviceAuditOut.model_validate(asdict(audit))
