"""The README runs as written: every python and sh block, in order, as a new user runs it.

The blocks run in one scratch copy of the checkout (``git ls-files``), with an
environment like a new user's second shell: the caller's PATH without any virtualenv,
a scratch HOME, and whatever the README's own blocks export (each ``sh`` block's
exports carry over to the blocks after it, as in one shell). Python blocks run with
the copy's ``.venv/bin/python``; that venv reuses this test run's installed packages
through a ``.pth`` file, so ``./scripts/up`` finds its dependencies already there (as
on a second run) and installs only the copy itself. Servers are the ones the README's
quickstart starts (``./scripts/up``); background blocks get Ctrl-C at the end.

How blocks are marked is described in :mod:`tests.readme_blocks`. The quickstart uses
``up``'s default port 6389; runs on one machine take turns through a lock file.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from tests.readme_blocks import Block, expected_pattern, read_blocks

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BLOCKS = read_blocks(README)
#: The port the README's quickstart expects ``up`` to get.
QUICKSTART_PORT = 6389
#: Seconds a foreground block may run; a background block gets as long to get ready.
BLOCK_TIMEOUT_S = 120.0
#: Seconds to wait for another README run on this machine to finish.
LOCK_TIMEOUT_S = 600.0
LOCK_FILE = Path("/tmp/commissaire-tasks-readme.lock")
#: Variables a shell sets by itself, not exports a block made.
_SHELL_OWN = frozenset({"_", "SHLVL", "PWD", "OLDPWD"})


class ReadmeSession:
    """The scratch checkout, the user's environment and the background processes."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.folder = folder
        self.env = env
        self.logs = folder.parent / "logs"
        self.logs.mkdir()
        self.background: list[tuple[subprocess.Popen[bytes], Path]] = []
        self.failed: Block | None = None

    def run(self, block: Block) -> None:
        """Run ``block`` as its mark says; raise AssertionError when it fails."""
        if block.mode == "file":
            (self.folder / block.argument).write_text(block.code)
        elif block.mode == "background":
            self._start(block)
        else:
            self._run(block)

    def _command(self, block: Block, env_file: Path | None = None) -> list[str]:
        if block.lang == "python":
            return [str(self.folder / ".venv" / "bin" / "python"), "-c", block.code]
        script = block.code
        if env_file is not None:
            script += f'\nenv -0 > "{env_file}"\n'
        return ["bash", "-e", "-o", "pipefail", "-c", script]

    def _run(self, block: Block) -> None:
        env_file = self.logs / f"env-{block.line}"
        done = subprocess.run(
            self._command(block, env_file if block.lang == "sh" else None),
            cwd=self.folder,
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=BLOCK_TIMEOUT_S,
            check=False,
        )
        output = done.stdout + done.stderr
        assert done.returncode == 0, f"exit code {done.returncode}; output:\n{output}"
        _assert_prints(block, output)
        if env_file.exists():
            self.env = _exports(env_file.read_bytes())

    def _start(self, block: Block) -> None:
        assert block.prints, "a background block needs a `text` block showing what it prints"
        log = self.logs / f"background-{block.line}.log"
        with open(log, "wb") as output:
            process = subprocess.Popen(
                self._command(block),
                cwd=self.folder,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.background.append((process, log))
        deadline = time.monotonic() + BLOCK_TIMEOUT_S
        while not _printed_all(block, log.read_text(errors="replace")):
            text = log.read_text(errors="replace")
            assert process.poll() is None, f"exited with {process.returncode}; output:\n{text}"
            assert time.monotonic() < deadline, f"not ready in {BLOCK_TIMEOUT_S:g} s:\n{text}"
            time.sleep(0.2)

    def stop(self) -> None:
        """Ctrl-C to every background block, the last started first; SIGKILL if it lingers."""
        for process, _ in reversed(self.background):
            _signal_group(process, signal.SIGINT)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait(10)
        for process, _ in self.background:  # leftovers of a group whose leader exited
            _signal_group(process, signal.SIGKILL)


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


def _printed_all(block: Block, output: str) -> bool:
    return all(expected_pattern(line).search(output) for line in block.prints)


def _assert_prints(block: Block, output: str) -> None:
    missing = [line for line in block.prints if not expected_pattern(line).search(output)]
    assert not missing, f"the README shows {missing!r}; the output was:\n{output}"


def _exports(dump: bytes) -> dict[str, str]:
    pairs = (entry.decode().partition("=") for entry in dump.split(b"\0") if entry)
    return {name: value for name, _, value in pairs if name not in _SHELL_OWN}


def _user_env(home: Path) -> dict[str, str]:
    """A new login's environment: the caller's PATH without a virtualenv, a fresh HOME."""
    venv_bins = {str(Path(sys.prefix) / "bin"), str(Path(sys.executable).parent)}
    if os.environ.get("VIRTUAL_ENV"):
        venv_bins.add(str(Path(os.environ["VIRTUAL_ENV"]) / "bin"))
    path = [p for p in os.environ.get("PATH", os.defpath).split(os.pathsep) if p not in venv_bins]
    return {"PATH": os.pathsep.join(path), "HOME": str(home), "LANG": "C.UTF-8"}


def _copy_checkout(folder: Path) -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout  # fmt: skip
    for name in filter(None, listed.decode().split("\0")):
        source = ROOT / name
        if source.is_file() and not name.startswith(".venv/"):
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, folder / name)


def _make_venv(folder: Path) -> None:
    """``.venv`` as a second ``./scripts/up`` finds it: the dependencies already there."""
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(folder / ".venv")], check=True, timeout=120)
    created = subprocess.run(
        [str(folder / ".venv" / "bin" / "python"), "-c",
         "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    Path(created, "zz_readme_test_packages.pth").write_text("\n".join(sorted(ours)) + "\n")
    _copy_console_scripts(folder / ".venv" / "bin")


def _copy_console_scripts(bin_dir: Path) -> None:
    """The dependencies' commands (``celery``...), as pip would have put them in ``bin``."""
    ours = Path(sys.executable).parent
    python = bin_dir / "python"
    for script in ours.iterdir():
        if (bin_dir / script.name).exists() or script.name == "commissaire-tasks":
            continue  # the venv's own, and the one ./scripts/up installs
        with open(script, "rb") as file:
            first = file.readline()
        if first.startswith(b"#!") and b"python" in first:
            body = script.read_bytes()[len(first) :]
            (bin_dir / script.name).write_bytes(f"#!{python}\n".encode() + body)
            (bin_dir / script.name).chmod(0o755)


@contextlib.contextmanager
def _machine_lock() -> Iterator[IO[str]]:
    """One README run per machine at a time: they all want ``up``'s default port."""
    with open(LOCK_FILE, "a+") as lock:
        deadline = time.monotonic() + LOCK_TIMEOUT_S
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    pytest.fail(f"another README run held {LOCK_FILE} for {LOCK_TIMEOUT_S:g} s")
                time.sleep(1)
        yield lock


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture(scope="module")
def readme_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReadmeSession]:
    with _machine_lock():
        if not _port_is_free(QUICKSTART_PORT):
            pytest.fail(
                f"port {QUICKSTART_PORT} is in use (a running `commissaire-tasks up`?): "
                "the README's quickstart needs it"
            )
        base = tmp_path_factory.mktemp("readme")
        folder = base / "commissaire-tasks"
        home = base / "home"
        home.mkdir()
        _copy_checkout(folder)
        _make_venv(folder)
        session = ReadmeSession(folder, _user_env(home))
        try:
            yield session
        finally:
            session.stop()


def test_every_background_block_of_the_readme_shows_what_it_prints_when_ready() -> None:
    assert BLOCKS, "the README has python or sh blocks"
    for block in BLOCKS:
        if block.mode == "background":
            assert block.prints, f"line {block.line}: show what it prints in a `text` block"


def test_marks_set_how_a_block_runs_and_a_text_block_after_it_is_its_output(
    tmp_path: Path,
) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "<!-- readme: background -->\n```sh\nserve\n```\n\nprints:\n\n"
        "```text\nlistening on ...\n```\n"
        "<!-- readme: file app.py -->\n```python\napp = 1\n```\n"
        "<!-- readme: skip needs a GPU -->\n```sh\ntrain\n```\n"
        "```json\n{}\n```\n```python\nprint(1)\n```\n"
        "A paragraph\nof three\nlines.\n```text\nnot its output\n```\n"
    )

    blocks = read_blocks(page)

    assert [(b.mode, b.argument, b.code) for b in blocks] == [
        ("background", "", "serve\n"),
        ("file", "app.py", "app = 1\n"),
        ("skip", "needs a GPU", "train\n"),
        ("run", "", "print(1)\n"),
    ]
    assert blocks[0].prints == ("listening on ...",)
    assert blocks[3].prints == ()
    assert expected_pattern(blocks[0].prints[0]).search("listening on 127.0.0.1:80")


@pytest.mark.parametrize(
    "mark", ["<!-- readme: bakground -->", "<!-- readme: skip -->", "<!-- readme:file -->"]
)
def test_a_misspelt_or_incomplete_mark_is_an_error_not_a_silently_run_block(
    mark: str, tmp_path: Path
) -> None:
    page = tmp_path / "page.md"
    page.write_text(f"{mark}\n```sh\nrm -rf build\n```\n")

    with pytest.raises(ValueError, match="line 1"):
        read_blocks(page)


@pytest.mark.parametrize("block", BLOCKS, ids=[block.id for block in BLOCKS])
def test_the_readme_block_runs_as_written(block: Block, readme_session: ReadmeSession) -> None:
    if block.mode == "skip":
        pytest.skip(f"README line {block.line}: {block.argument}")
    if readme_session.failed is not None:
        pytest.skip(f"not run: the block at README line {readme_session.failed.line} failed")
    try:
        readme_session.run(block)
    except BaseException:
        if block.mode != "run":  # what later blocks rely on: a server, a worker, a file
            readme_session.failed = block
        raise
