"""Per-OS bootstrap command sets: declarative JSON files of named steps.

A command set is a JSON file (``command_sets/<name>.json`` in this package, or in
the folder the investigator's ``command_sets_dir`` names, which then replaces the
packaged sets)::

    {"os": ["rhel", "redhat"],
     "steps": [
       {"name": "install packages", "packages": ["docker", "flannel"]},
       {"name": "configure flannel", "template": "flanneld.j2", "dest": "/etc/sysconfig/flanneld"},
       {"name": "enable and restart services", "services": ["flanneld", "docker"]},
       {"name": "say hello", "command": "echo hello"}]}

Each step has a ``name`` and exactly one action: ``packages`` (installed),
``template`` with ``dest`` (rendered from the set's folder or the packaged
``templates/``), ``services`` (enabled and restarted with systemd, or with the step's
``command`` run once per ``{{ service }}``), or ``command`` (a shell command). Steps
run in order as one task each, so a failure names its step.

A set may also name the shell commands of the cluster operations (as the
original's OS classes did): ``"upgrade": "dnf update -y"`` and
``"restart": "sleep 2 && systemctl reboot"`` (see :mod:`commissaire_tasks.clusters`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from commissaire_tasks.errors import ConfigurationError

__all__ = [
    "CommandSet",
    "UnknownOSError",
    "command_set_for",
    "load_command_sets",
    "packaged_folder",
]

#: The actions a step may have; a step has exactly one.
ACTIONS = ("packages", "template", "services", "command")
#: The cluster operations' commands a set may name.
OPERATIONS = ("upgrade", "restart")


class UnknownOSError(LookupError):
    """Raised when no command set is known for a host's OS."""


@dataclass(frozen=True)
class CommandSet:
    """The named steps that bootstrap hosts of the OSes in ``names``."""

    names: tuple[str, ...]
    steps: tuple[Mapping[str, Any], ...]
    folder: Path
    #: Shell command that upgrades the OS packages ('' when the set names none).
    upgrade: str = ""
    #: Shell command that reboots the host ('' when the set names none).
    restart: str = ""

    def tasks(self) -> list[dict[str, Any]]:
        """The steps as Ansible tasks, one per step, named as the step."""
        return [self._task(step) for step in self.steps]

    def _task(self, step: Mapping[str, Any]) -> dict[str, Any]:
        name = step["name"]
        if "packages" in step:
            return {"name": name, "ansible.builtin.package": {"name": list(step["packages"])}}
        if "template" in step:
            source = self._template(step["template"])
            module = {"src": str(source), "dest": step["dest"], "mode": "0644"}
            return {"name": name, "ansible.builtin.template": module}
        if "services" in step:
            loop = {"loop": list(step["services"]), "loop_control": {"loop_var": "service"}}
            if "command" in step:
                return {"name": name, "ansible.builtin.shell": step["command"], **loop}
            module = {"name": "{{ service }}", "enabled": True, "state": "restarted"}
            return {"name": name, "ansible.builtin.systemd_service": module, **loop}
        return {"name": name, "ansible.builtin.shell": step["command"]}

    def _template(self, name: str) -> Path:
        for folder in (self.folder, packaged_folder("templates")):
            if (folder / name).is_file():
                return folder / name
        raise ConfigurationError(f"command set {self.names[0]!r}: no template {name!r}")


def packaged_folder(name: str) -> Path:
    """A data folder shipped in this package (``command_sets``, ``templates``, ``playbooks``)."""
    return Path(str(resources.files("commissaire_tasks.hosts"))) / name


def load_command_sets(folder: str | Path | None = None) -> dict[str, CommandSet]:
    """Every command set of ``folder`` (the packaged ones when None), by OS name.

    Raises:
        ConfigurationError: a file is not a valid command set (checked when the
            worker starts, so a bad set never fails a host halfway).
    """
    path = Path(folder) if folder else packaged_folder("command_sets")
    if not path.is_dir():
        raise ConfigurationError(f"command_sets_dir {str(path)!r} is not a folder")
    sets: dict[str, CommandSet] = {}
    for file in sorted(path.glob("*.json")):
        command_set = _parse(file)
        for name in command_set.names:
            sets[name] = command_set
    return sets


def command_set_for(os_name: str, sets: Mapping[str, CommandSet]) -> CommandSet:
    """The set for ``os_name`` (lower case), or UnknownOSError naming it."""
    try:
        return sets[os_name.lower()]
    except KeyError:
        known = ", ".join(sorted(sets)) or "none"
        raise UnknownOSError(
            f"no bootstrap command set for OS {os_name!r} (known: {known})"
        ) from None


def _parse(file: Path) -> CommandSet:
    try:
        data = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigurationError(f"command set {file}: {exc}") from exc
    names = data.get("os") if isinstance(data, dict) else None
    names = [names] if isinstance(names, str) else names
    steps = data.get("steps") if isinstance(data, dict) else None
    if not names or not isinstance(names, list) or not isinstance(steps, list):
        raise ConfigurationError(f"command set {file}: needs 'os' (names) and 'steps' (a list)")
    for number, step in enumerate(steps, 1):
        _check_step(file, number, step)
    operations = {key: data.get(key, "") for key in OPERATIONS}
    for key, command in operations.items():
        if not isinstance(command, str):
            raise ConfigurationError(f"command set {file}: {key!r} must be a shell command")
    folder = file.parent
    return CommandSet(tuple(str(n).lower() for n in names), tuple(steps), folder, **operations)


def _check_step(file: Path, number: int, step: Any) -> None:
    where = f"command set {file}, step {number}"
    if not isinstance(step, dict) or not isinstance(step.get("name"), str) or not step["name"]:
        raise ConfigurationError(f"{where}: every step needs a 'name'")
    actions = [a for a in ACTIONS if a in step and not (a == "command" and "services" in step)]
    if len(actions) != 1:
        raise ConfigurationError(f"{where} ({step['name']}): needs exactly one of {ACTIONS}")
    if "template" in step and not isinstance(step.get("dest"), str):
        raise ConfigurationError(f"{where} ({step['name']}): a template step needs 'dest'")
    for key in ("packages", "services"):
        if key in step and not _strings(step[key]):
            raise ConfigurationError(f"{where} ({step['name']}): {key!r} must list names")


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)
