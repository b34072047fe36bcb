"""The sealer: secret payloads are opaque in transit and open only with the right key."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from commissaire_tasks.config import ENV_SECRETS_KEY
from commissaire_tasks.errors import ConfigurationError, InvalidParams
from commissaire_tasks.storage.sealing import SEALED, Sealer, is_sealed

PAYLOAD = {"address": "10.0.0.1", "ssh_priv_key": "PRIVATE"}


def test_a_sealed_payload_is_an_envelope_that_hides_its_values_and_opens_again() -> None:
    sealer = Sealer(Fernet.generate_key())
    sealed = sealer.seal(PAYLOAD)
    assert is_sealed(sealed) and set(sealed) == {SEALED}
    assert "PRIVATE" not in sealed[SEALED]
    assert sealer.unseal(sealed) == PAYLOAD


def test_an_unsealed_payload_passes_through_unseal_unchanged() -> None:
    assert Sealer(Fernet.generate_key()).unseal(PAYLOAD) == PAYLOAD


def test_another_key_cannot_open_a_sealed_payload_and_says_so_as_invalid_params() -> None:
    sealed = Sealer(Fernet.generate_key()).seal(PAYLOAD)
    with pytest.raises(InvalidParams, match="cannot be opened"):
        Sealer(Fernet.generate_key()).unseal(sealed)


def test_no_key_is_a_configuration_error_naming_the_environment_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(ENV_SECRETS_KEY, raising=False)
    with pytest.raises(ConfigurationError, match=ENV_SECRETS_KEY):
        Sealer()


def test_a_bad_key_is_a_configuration_error_that_does_not_quote_the_key() -> None:
    with pytest.raises(ConfigurationError) as raised:
        Sealer("not-a-fernet-key")
    assert "not-a-fernet-key" not in str(raised.value)


def test_the_key_comes_from_the_environment_when_not_given(monkeypatch: pytest.MonkeyPatch) -> None:
    key = Fernet.generate_key().decode()
    monkeypatch.setenv(ENV_SECRETS_KEY, key)
    assert Sealer(key).unseal(Sealer().seal(PAYLOAD)) == PAYLOAD


@pytest.mark.parametrize("payload", [None, [], {SEALED: "x", "other": 1}, {"a": 1}])
def test_only_an_object_with_the_single_sealed_key_counts_as_sealed(payload: object) -> None:
    assert not is_sealed(payload)
