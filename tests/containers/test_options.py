"""A ContainerManagerConfig's options are checked when it is saved (pure logic, no server)."""

from __future__ import annotations

from typing import Any

import pytest

from commissaire_tasks.errors import ValidationError
from commissaire_tasks.models import ContainerManagerConfig


def problems(manager_type: str, options: dict[str, Any]) -> list[str]:
    config = ContainerManagerConfig.new(name="m", type=manager_type, options=options)
    try:
        config._prepare()
    except ValidationError as error:
        return error.errors
    return []


@pytest.mark.parametrize("manager_type", ["kubernetes", "openshift"])
def test_kubernetes_and_openshift_are_accepted_with_a_server_url(manager_type: str) -> None:
    assert problems(manager_type, {"server_url": "https://api.example:6443"}) == []
    assert problems("trivial", {"anything": 1}) == []


def test_bad_kubernetes_options_are_refused_naming_each_problem() -> None:
    (line,) = problems(
        "kubernetes",
        {"certificate_path": "/c.pem", "insecure_skip_tls_verify": "yes", "tokn_file": "/t"},
    )

    assert "options.server_url: required" in line
    assert "options.insecure_skip_tls_verify: must be a bool" in line
    assert "options.tokn_file: unknown option" in line
    assert "certificate_path and certificate_key_path go together" in line


def test_an_inline_token_is_refused_without_being_quoted() -> None:
    (line,) = problems("kubernetes", {"server_url": "https://k", "token": "s3cr3t-value"})

    assert "options.token: secrets are not kept inline" in line and "token_file" in line
    assert "s3cr3t-value" not in line
