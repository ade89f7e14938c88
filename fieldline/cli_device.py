"""``fieldline device …``: broker credentials for edge devices (Mosquitto password file + ACL)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

device_app = typer.Typer(help="Provision edge devices on the MQTT broker (credentials and ACL).", no_args_is_help=True)

err = Console(stderr=True)
out = Console(highlight=False, soft_wrap=True)

MosquittoDir = Annotated[
    Path,
    typer.Option("--mosquitto-dir", help="Directory with Mosquitto's passwd and acl files (created if missing)"),
]
RELOAD_HINT = ("Mosquitto reads the files on start and on SIGHUP: `systemctl reload mosquitto` or "
               "`docker compose kill -s HUP mosquitto`.")


def _fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


@device_app.command("add")
def device_add(
    device: Annotated[str, typer.Argument(help="Device id, e.g. gh-edge-01")],
    site: Annotated[str, typer.Option("--site", help="Site id, e.g. shouguang-north")],
    mosquitto_dir: MosquittoDir = Path("deploy/mosquitto"),
    rotate: Annotated[bool, typer.Option("--rotate", help="Replace the password of an existing device")] = False,
    host: Annotated[
        str, typer.Option(help="Broker host name the device connects to (for the YAML snippet)")
    ] = "mqtt.example.org",
    port: Annotated[int, typer.Option(help="Broker TLS port (for the YAML snippet)")] = 8883,
    ca_file: Annotated[
        str, typer.Option(help="CA certificate path on the device (for the YAML snippet)")
    ] = "/etc/fieldline/ca.crt",
) -> None:
    """Create broker credentials for a device; it may publish only under fieldline/v1/SITE/DEVICE/#.

    The password is printed once and only its hash is stored. The first call also creates the `api` user.
    """
    from cloud_api.services.devices_provisioning import (
        MosquittoAuthFiles,
        ProvisioningError,
        api_mqtt_snippet,
        edge_mqtt_snippet,
    )

    files = MosquittoAuthFiles(mosquitto_dir)
    try:
        credentials = files.add_device(site, device, rotate=rotate)
        api = files.ensure_api_user()
    except ProvisioningError as exc:
        _fail(str(exc))
    out.print(f"[bold green]device {device} at site {site}[/]: MQTT user {credentials.username}")
    out.print(f"password (shown once): {credentials.password}")
    out.print("\n# edge agent YAML (merge into the device's config):")
    out.print(edge_mqtt_snippet(credentials, host, port, ca_file), markup=False)
    if api is not None:
        out.print("# new broker user for the cloud API (password shown once); add to the API's YAML:")
        out.print(api_mqtt_snippet(api), markup=False)
    out.print(f"updated {files.password_file} and {files.acl_file}. {RELOAD_HINT}")


@device_app.command("remove")
def device_remove(
    device: Annotated[str, typer.Argument(help="Device id")],
    site: Annotated[str, typer.Option("--site", help="Site id")],
    mosquitto_dir: MosquittoDir = Path("deploy/mosquitto"),
) -> None:
    """Delete a device's broker credentials and ACL entry (its open connection ends on the next reload)."""
    from cloud_api.services.devices_provisioning import MosquittoAuthFiles, ProvisioningError

    files = MosquittoAuthFiles(mosquitto_dir)
    try:
        files.remove_device(site, device)
    except ProvisioningError as exc:
        _fail(str(exc))
    out.print(f"removed device {device} at site {site} from {files.password_file} and {files.acl_file}. {RELOAD_HINT}")


@device_app.command("list")
def device_list(mosquitto_dir: MosquittoDir = Path("deploy/mosquitto")) -> None:
    """List the devices that have broker credentials."""
    from cloud_api.services.devices_provisioning import MosquittoAuthFiles, ProvisioningError

    try:
        devices = MosquittoAuthFiles(mosquitto_dir).devices()
    except ProvisioningError as exc:
        _fail(str(exc))
    for entry in devices:
        out.print(f"{entry.site}\t{entry.device}\t{entry.username}\t{entry.topic_root}/#", markup=False)


@device_app.command("api-user")
def device_api_user(
    mosquitto_dir: MosquittoDir = Path("deploy/mosquitto"),
    rotate: Annotated[bool, typer.Option("--rotate", help="Replace the password of the existing api user")] = False,
) -> None:
    """Create (or rotate) the broker user of the cloud API: reads every FieldLine topic, writes commands."""
    from cloud_api.services.devices_provisioning import MosquittoAuthFiles, api_mqtt_snippet

    files = MosquittoAuthFiles(mosquitto_dir)
    api = files.ensure_api_user(rotate=rotate)
    if api is None:
        out.print(f"the api user already exists in {files.password_file} (use --rotate for a new password)")
        return
    out.print("# cloud API YAML (password shown once):")
    out.print(api_mqtt_snippet(api), markup=False)
    out.print(f"updated {files.password_file} and {files.acl_file}. {RELOAD_HINT}")

