"""Headless Chromium (Debian's ``chromium``) with the flags that work in a container."""

from __future__ import annotations

import shutil
import subprocess
import tempfile

#: Where Debian installs it (scripts/servers.sh installs it when missing).
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def available() -> bool:
    return shutil.which(CHROMIUM) is not None


def dump_dom(url: str, timeout_s: float = 90.0) -> str:
    """The page's DOM after it loaded, as Chromium serialises it."""
    with tempfile.TemporaryDirectory(prefix="ct-chromium-") as profile:
        done = subprocess.run(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    return done.stdout
