from __future__ import annotations

from fastapi import APIRouter

from cloud_api.api.deps import StoreDep
from cloud_api.api.schemas import DeviceOut

router = APIRouter(tags=["devices"])


@router.get("/devices", response_model=list[DeviceOut], summary="Devices with their online/offline state")
def list_devices(store: StoreDep) -> list[DeviceOut]:
    return [DeviceOut.model_validate(record, from_attributes=True) for record in store.list_devices()]
