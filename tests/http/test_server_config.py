"""The server's config file: the original's keys, with dashes or underscores; flags win."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from commissaire_tasks.errors import ConfigurationError
from commissaire_tasks.http.server_config import ServerConfig, load_server_config


def test_the_originals_keys_are_read_with_dashes_or_underscores(tmp_path: Path) -> None:
    path = tmp_path / "commissaire.conf"
    path.write_text(
        json.dumps(
            {
                "listen-interface": "127.0.0.1",
                "listen_port": 8443,
                "tls-pemfile": "/etc/server.pem",
                "tls_clientverifyfile": "/etc/ca.pem",
                "authentication-plugins": [{"name": "httpbasicauth", "filepath": "/etc/u.json"}],
                "roles": {"creds": ["alice"]},
                "bus-uri": "redis://127.0.0.1:6379/0",
                "debug": True,
            }
        )
    )
    config = load_server_config(str(path))
    assert (config.host, config.port, config.tls_cert, config.client_ca) == (
        "127.0.0.1", 8443, "/etc/server.pem", "/etc/ca.pem",
    )  # fmt: skip
    assert config.plugins[0]["name"] == "httpbasicauth"
    assert config.roles == {"creds": ("alice",)}
    assert config.replace(port=9000, host=None).port == 9000  # a flag wins; None keeps the file's
    assert load_server_config(None) == ServerConfig()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ({"listen-prot": 1}, "unknown key 'listen-prot'"),
        ({"authentication-plugins": {"name": "x"}}, "must be a list of objects"),
        ({"roles": {"creds": "alice"}}, "roles must map a role to a list"),
        ([], "must be a JSON object"),
    ],
)
def test_a_wrong_config_is_refused_with_the_reason(
    tmp_path: Path, content: object, problem: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(content))
    with pytest.raises(ConfigurationError, match=problem):
        load_server_config(str(path))
