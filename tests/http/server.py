"""``commissaire-tasks serve`` in a subprocess: the REST front as it runs, importing no service."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

#: Seconds the server gets to listen.
START_TIMEOUT_S = 120.0
ROOT = Path(__file__).resolve().parents[2]


class ServeProcess:
    """Runs ``python -m commissaire_tasks.cli [top] serve [args]``, output in a log file."""

    def __init__(
        self,
        top: Sequence[str],
        args: Sequence[str],
        port: int,
        log: Path,
        env: Mapping[str, str],
    ) -> None:
        self.command = [sys.executable, "-m", "commissaire_tasks.cli", *top, "serve", *args]
        self.port = port
        self.log_path = log
        self.env = dict(env)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, wait: bool = True) -> ServeProcess:
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                self.command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        return self.wait_listening() if wait else self

    def wait_listening(self) -> ServeProcess:
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"serve exited early:\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"serve did not listen in {START_TIMEOUT_S} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
