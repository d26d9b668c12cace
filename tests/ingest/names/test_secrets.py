"""Credentials from the environment and from Secrets Manager (moto server)."""

from __future__ import annotations

import json
import pickle

import boto3
import pytest

from ingest.errors import UserError
from ingest.names.secrets import (
    Credentials,
    Secret,
    credentials_from_env,
    resolve_credentials,
)

PASSWORD = "s3cr3t-Hx91-pw"


def test_secret_never_prints_its_value() -> None:
    secret = Secret(PASSWORD)
    credentials = Credentials("u", secret)

    shown = [
        str(secret),
        repr(secret),
        f"{secret}",
        f"{secret!r}",
        "%s %r" % (secret, secret),  # noqa: UP031 (the way logging formats its arguments)
        repr(credentials),
    ]
    assert all(PASSWORD not in text for text in shown)
    assert str(secret) == "***"
    assert secret.reveal() == PASSWORD
    with pytest.raises(TypeError):
        pickle.dumps(secret)


def test_credentials_from_env() -> None:
    found = credentials_from_env({"FREEWHEEL_USERNAME": "me", "FREEWHEEL_PASSWORD": PASSWORD})
    assert found is not None
    assert found.username == "me" and found.password.reveal() == PASSWORD


def test_env_with_only_a_username_names_the_missing_variable() -> None:
    with pytest.raises(UserError, match="FREEWHEEL_PASSWORD is not set"):
        credentials_from_env({"FREEWHEEL_USERNAME": "me"})


def test_no_credentials_anywhere_says_what_to_set() -> None:
    with pytest.raises(UserError, match="no FreeWheel credentials: set FREEWHEEL_USERNAME"):
        resolve_credentials(None, environ={})


def _put_secret(name: str, value: str) -> None:
    boto3.client("secretsmanager").create_secret(Name=name, SecretString=value)


def test_credentials_from_secrets_manager(aws: str) -> None:
    _put_secret("b2p/freewheel", json.dumps({"username": "api-user", "password": PASSWORD}))

    # the secret wins over the environment when --secret-id is given
    env = {"FREEWHEEL_USERNAME": "env-user", "FREEWHEEL_PASSWORD": "env-pw"}
    found = resolve_credentials("b2p/freewheel", environ=env)

    assert found.username == "api-user"
    assert found.password.reveal() == PASSWORD


def test_missing_secret_is_a_clear_error(aws: str) -> None:
    with pytest.raises(UserError, match=r"secret 'b2p/nope' does not exist") as caught:
        resolve_credentials("b2p/nope")
    assert caught.value.__cause__ is None


def test_malformed_secret_does_not_print_its_value(aws: str) -> None:
    _put_secret("b2p/broken", '{"username": "api-user", "password": "' + PASSWORD + '"')

    with pytest.raises(UserError, match="is not a JSON object like") as caught:
        resolve_credentials("b2p/broken")
    assert PASSWORD not in str(caught.value)
    assert caught.value.__context__ is None  # the JSON error (which quotes the text) is gone


def test_secret_without_a_password_names_the_key(aws: str) -> None:
    _put_secret("b2p/half", json.dumps({"username": "api-user", "pass": PASSWORD}))

    with pytest.raises(UserError, match=r"has no \(non-empty string\) password") as caught:
        resolve_credentials("b2p/half")
    assert PASSWORD not in str(caught.value)


def test_binary_secret_is_rejected(aws: str) -> None:
    boto3.client("secretsmanager").create_secret(Name="b2p/bin", SecretBinary=b"\x00\x01")

    with pytest.raises(UserError, match="has no SecretString"):
        resolve_credentials("b2p/bin")
