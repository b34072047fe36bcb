"""The README's "Running the tests" names everything ``./scripts/test`` installs or turns on."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "commissaire-tasks"


def running_the_tests() -> str:
    """The README's "Running the tests" section, lower-cased."""
    readme = (ROOT / "README.md").read_text()
    start = readme.index("\n## Running the tests\n")
    end = readme.index("\n## ", start + 1)
    return readme[start:end].lower()


def requirement_name(requirement: str) -> str:
    return re.split(r"[\[<>=!~;\s]", requirement, maxsplit=1)[0]


def extra_packages(extra: str) -> set[str]:
    """Every package the extra pulls in directly, through the project's own extras too."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    names: set[str] = set()
    for requirement in extras[extra]:
        name = requirement_name(requirement)
        if name != PROJECT:
            names.add(name)
            continue
        inner = re.search(r"\[(.*)\]", requirement)
        for sub in inner.group(1).split(",") if inner else ():
            names |= extra_packages(sub.strip())
    return names


def test_the_readme_names_every_python_package_of_the_test_extra() -> None:
    packages = extra_packages("test")
    assert {"kubernetes", "fastapi", "bcrypt", "hypothesis"} <= packages  # the parse works
    section = running_the_tests()
    assert [name for name in sorted(packages) if not named(name.lower(), section)] == []


def test_the_readme_names_every_debian_package_and_plugin_the_scripts_may_install() -> None:
    script = (ROOT / "scripts" / "servers.sh").read_text()
    packages = set(re.findall(r"apt_install ([a-z][a-z0-9.+-]+)", script))
    assert {"chromium", "openssh-server", "rabbitmq-server"} <= packages
    plugins = set(re.findall(r"rabbitmq-plugins -q enable (\w+)", script))
    assert plugins == {"rabbitmq_management"}
    section = running_the_tests()
    assert [name for name in sorted(packages | plugins) if not named(name, section)] == []


def named(name: str, text: str) -> bool:
    """``name`` stands in ``text`` as a word of its own (``chromium``, not ``chromium-driver``)."""
    return re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text) is not None
