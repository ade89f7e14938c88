"""Start a private Xvfb display (``apt-get install -y xvfb``) for Kivy, unless $DISPLAY is already set."""

from __future__ import annotations

import os
import shutil
import subprocess


class Xvfb:
    def __init__(self, screen: str = "1280x1400x24") -> None:
        self.screen = screen
        self.proc: subprocess.Popen[bytes] | None = None
        self.display = os.environ.get("DISPLAY") or None

    def __enter__(self) -> Xvfb:
        if self.display:
            return self
        binary = shutil.which("Xvfb")
        if binary is None:
            raise RuntimeError("Xvfb not found: apt-get install -y xvfb")
        read, write = os.pipe()
        self.proc = subprocess.Popen([binary, "-displayfd", str(write), "-screen", "0", self.screen, "-nolisten", "tcp"],
                                     pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(write)
        number = b""
        while not number.endswith(b"\n"):
            chunk = os.read(read, 16)
            if not chunk:
                os.close(read)
                raise RuntimeError("Xvfb exited before reporting its display number")
            number += chunk
        os.close(read)
        self.display = f":{number.decode().strip()}"
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self.proc = None
