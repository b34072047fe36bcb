"""The cluster tests' command set (OS ``debian``) and clusterexec config, shared with tests/http.

Each host's upgrade and restart are observable: they append lines to files
under ``out_dir/<address>/``, a ``<address>.fail`` file makes a host's upgrade
fail, and its upgrade waits while an ``<address>.slow`` file exists.
``<address>.ostree`` is the rpm-ostree marker of that host, and a fake
``rpm-ostree`` writes its arguments to ``<address>/rpm-ostree``.
"""

from __future__ import annotations

import json
from pathlib import Path

#: Seconds an operation's lock lives without a refresh in these tests.
LOCK_TTL_S = 10


def _script(out_dir: Path, name: str, lines: list[str]) -> str:
    path = out_dir / name
    path.write_text("#!/bin/sh\nset -e\n" + "\n".join(lines) + "\n")
    path.chmod(0o755)
    return str(path)


def write_cluster_config(out_dir: Path, folder: Path) -> Path:
    """Write the command set and the clusterexec config under ``folder``; the config's path."""
    here = f'"{out_dir}/$COMMISSAIRE_ADDRESS"'
    upgrade = _script(
        out_dir,
        "upgrade.sh",
        [
            f"mkdir -p {here}",
            f'echo "start $(date +%s.%N)" >> {here}/upgrade',
            f"while [ -e {here}.slow ]; do sleep 0.1; done",
            f"if [ -e {here}.fail ]; then echo asked to fail >&2; exit 3; fi",
            "sleep 0.2",
            f'echo "end $(date +%s.%N)" >> {here}/upgrade',
        ],
    )
    restart = _script(
        out_dir,
        "restart.sh",
        [
            f"mkdir -p {here}",
            f"echo restarted >> {here}/restart",
            # <address>.sshd holds the pid of the sshd to stop, as a reboot would
            f'if [ -e {here}.sshd ]; then sleep 1; kill "$(cat {here}.sshd)"; fi',
        ],
    )
    rpm_ostree = _script(
        out_dir, "rpm-ostree", [f"mkdir -p {here}", f'echo "$@" >> {here}/rpm-ostree']
    )
    sets = folder / "command-sets"
    sets.mkdir(parents=True, exist_ok=True)
    command_set = {
        "os": ["debian"],
        "steps": [{"name": "nothing to bootstrap", "command": "true"}],
        "upgrade": upgrade,
        "restart": restart,
    }
    (sets / "debian.json").write_text(json.dumps(command_set))
    config = {
        "command_sets_dir": str(sets),
        "ostree_marker": f"{out_dir}/{{{{ commissaire_address }}}}.ostree",
        "rpm_ostree": rpm_ostree,
        "ssh_timeout_s": 15,
        "operation_lock_s": LOCK_TTL_S,
        "restart_down_timeout_s": 20,
        "restart_timeout_s": 30,
    }
    path = folder / "clusterexec.json"
    path.write_text(json.dumps(config))
    return path
