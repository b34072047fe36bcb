"""A private sshd for the host tests: generated keys, a free loopback port, stopped by pid."""

from __future__ import annotations

import base64
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psutil

from commissaire_tasks.testing import free_port

#: Loopback addresses the sshd listens on (sshd takes 16 at most), a host per test.
ADDRESSES = tuple(f"127.0.0.{n}" for n in range(2, 18))
SSHD = "/usr/sbin/sshd"
#: Every private key generated in this process -> the texts that would give it away.
GENERATED_KEYS: dict[Path, list[str]] = {}


def generate_key(path: Path) -> Path:
    """A fresh ed25519 key pair at ``path`` (and ``path.pub``), remembered for leak checks."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ct-test", "-f", str(path)],
        check=True,
    )
    GENERATED_KEYS[path] = key_texts(path)
    return path


def key_texts(key_file: Path) -> list[str]:
    """What would give a private key away: its base64 (as in HostCreds) and its body lines.

    The first body line is left out: it is the same in every unencrypted ed25519 key.
    """
    lines = key_file.read_text().splitlines()
    body = [line for line in lines if line and not line.startswith("-----")]
    return [key_b64(key_file), *body[1:]]


def key_b64(path: Path) -> str:
    """The key file as HostCreds.ssh_priv_key holds it: base64 of the file."""
    return base64.b64encode(path.read_bytes()).decode()


class SSHServer:
    """``sshd -D`` as root on its own port, accepting only the generated client key."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="ct-sshd-"))
        self.port = free_port()
        self.host_key = generate_key(self.folder / "host_key")
        self.client_key = generate_key(self.folder / "client_key")
        shutil.copy(self.folder / "client_key.pub", self.folder / "authorized_keys")
        self.config = self.folder / "sshd_config"
        listen = "\n".join(f"ListenAddress {a}:{self.port}" for a in ADDRESSES)
        self.config.write_text(
            f"{listen}\nHostKey {self.host_key}\nPidFile {self.folder / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {self.folder / 'authorized_keys'}\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
            "PermitRootLogin prohibit-password\nStrictModes no\nLogLevel VERBOSE\n"
            "Subsystem sftp internal-sftp\n"
        )
        self.log = self.folder / "sshd.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 10.0) -> SSHServer:
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [SSHD, "-D", "-f", str(self.config), "-E", str(self.log)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"sshd exited: {self.log.read_text(errors='replace')}")
            if self.answers():
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("sshd did not start listening")

    def answers(self) -> bool:
        """True when the sshd sends its banner on the first address."""
        try:
            with socket.create_connection((ADDRESSES[0], self.port), timeout=1) as conn:
                return conn.recv(4).startswith(b"SSH-")
        except OSError:
            return False

    def stop(self) -> None:
        """Stop the listener and every session it forked (so nothing keeps answering)."""
        if self.process is None:
            return
        sessions = psutil.Process(self.process.pid).children(recursive=True)
        self.process.terminate()
        self.process.wait(10)
        self.process = None
        for session in sessions:  # by pid: the sessions this sshd forked
            try:
                session.kill()
            except psutil.NoSuchProcess:
                pass

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
