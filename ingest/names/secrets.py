"""FreeWheel API credentials: from the environment or from AWS Secrets Manager.

- Environment: `FREEWHEEL_USERNAME` and `FREEWHEEL_PASSWORD`.
- Secrets Manager (`b2p dimensions --secret-id ID`): a secret whose SecretString is the JSON
  object `{"username": "...", "password": "..."}`. boto3 finds the region and credentials the
  usual way and honours `AWS_ENDPOINT_URL`.

Secret values are wrapped in `Secret`, whose str/repr/format are `***`, so a password or token
that ends up in a log call, an f-string or a dataclass repr shows as `***`. Only `reveal()`
gives the value, and only the HTTP client calls it, to build a request.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ingest.errors import UserError

USERNAME_ENV = "FREEWHEEL_USERNAME"
PASSWORD_ENV = "FREEWHEEL_PASSWORD"
MASK = "***"


class Secret:
    """A string that never prints itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return MASK

    def __str__(self) -> str:
        return MASK

    def __format__(self, format_spec: str) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> Any:
        # pickling (multiprocessing, caches) would otherwise be a way to write the value out
        raise TypeError("a Secret cannot be pickled")


@dataclass(frozen=True)
class Credentials:
    username: str
    password: Secret


def credentials_from_env(environ: Mapping[str, str]) -> Credentials | None:
    """Credentials from FREEWHEEL_USERNAME/FREEWHEEL_PASSWORD; None when neither is set."""
    username = environ.get(USERNAME_ENV, "")
    password = environ.get(PASSWORD_ENV, "")
    if not username and not password:
        return None
    if not username or not password:
        missing = USERNAME_ENV if not username else PASSWORD_ENV
        raise UserError(
            f"{missing} is not set: set both {USERNAME_ENV} and {PASSWORD_ENV}, "
            "or pass --secret-id to read them from AWS Secrets Manager"
        )
    return Credentials(username=username, password=Secret(password))


def credentials_from_secrets_manager(secret_id: str, client: Any = None) -> Credentials:
    """Credentials from a Secrets Manager secret holding {"username": ..., "password": ...}."""
    if client is None:
        # imported here so the env-var path needs no AWS configuration
        from ingest.storage import aws

        client = aws.caller_session().client("secretsmanager", config=aws.client_config())
    secret_string = _get_secret_string(client, secret_id)
    return _parse_secret(secret_id, secret_string)


def _get_secret_string(client: Any, secret_id: str) -> str:
    from botocore.exceptions import BotoCoreError, ClientError

    failure: str | None = None
    response: dict[str, Any] = {}
    try:
        response = client.get_secret_value(SecretId=secret_id)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "ResourceNotFoundException":
            failure = "does not exist (check --secret-id and the AWS region)"
        elif code in ("AccessDeniedException", "AccessDenied"):
            failure = "cannot be read: access denied (grant secretsmanager:GetSecretValue)"
        else:
            failure = f"cannot be read: {code or 'error'}"
    except BotoCoreError as exc:
        failure = f"cannot be read: {type(exc).__name__}"
    # raised outside the except blocks so no AWS exception is chained onto ours
    if failure is not None:
        raise UserError(f"FreeWheel API secret {secret_id!r} {failure}")
    secret_string = response.get("SecretString")
    if not isinstance(secret_string, str):
        raise UserError(
            f"FreeWheel API secret {secret_id!r} has no SecretString: store it as the JSON text "
            '{"username": "...", "password": "..."}'
        )
    return secret_string


def _parse_secret(secret_id: str, secret_string: str) -> Credentials:
    expected = '{"username": "...", "password": "..."}'
    parsed: Any = None
    try:
        parsed = json.loads(secret_string)
    except ValueError:
        parsed = None  # the decode error quotes the document, i.e. the secret: never raise it
    if not isinstance(parsed, dict):
        raise UserError(f"FreeWheel API secret {secret_id!r} is not a JSON object like {expected}")
    missing = [
        key
        for key in ("username", "password")
        if not isinstance(parsed.get(key), str) or not parsed[key]
    ]
    if missing:
        raise UserError(
            f"FreeWheel API secret {secret_id!r} has no (non-empty string) {' or '.join(missing)}: "
            f"store it as {expected}"
        )
    return Credentials(username=parsed["username"], password=Secret(parsed["password"]))


def resolve_credentials(
    secret_id: str | None, environ: Mapping[str, str] | None = None, client: Any = None
) -> Credentials:
    """The secret when `secret_id` is given, else the environment; a UserError if neither works."""
    if secret_id:
        return credentials_from_secrets_manager(secret_id, client=client)
    found = credentials_from_env(os.environ if environ is None else environ)
    if found is None:
        raise UserError(
            f"no FreeWheel credentials: set {USERNAME_ENV} and {PASSWORD_ENV}, "
            "or pass --secret-id with an AWS Secrets Manager secret holding "
            '{"username": "...", "password": "..."}'
        )
    return found
