"""boto3 sessions and clients with the retry policy every AWS call of the project uses.

Endpoints come from the environment (AWS_ENDPOINT_URL, honoured by boto3 itself), so the same
code talks to AWS, to a local emulator or to a test proxy. Credentials are never logged here:
only role ARNs and error codes appear in messages.
"""

from __future__ import annotations

import functools
from typing import Any, Literal

import boto3
import botocore.session
from botocore.config import Config
from botocore.credentials import (
    AssumeRoleCredentialFetcher,
    CredentialProvider,
    CredentialResolver,
    Credentials,
    DeferredRefreshableCredentials,
)
from botocore.exceptions import BotoCoreError, ClientError

from ingest.errors import UserError

DEFAULT_MAX_ATTEMPTS = 10
RetryMode = Literal["standard", "adaptive", "legacy"]
DEFAULT_RETRY_MODE: RetryMode = "standard"
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 60.0
ASSUMED_ROLE_SESSION_NAME = "b2p-ingest"


def client_config(
    *,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    retry_mode: RetryMode = DEFAULT_RETRY_MODE,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    read_timeout: float = DEFAULT_READ_TIMEOUT,
) -> Config:
    """Retries for throttling, 5xx and broken connections, with bounded timeouts.

    `standard` backs off with jitter; `adaptive` also rate-limits the client after throttling,
    which suits many workers hammering one bucket.
    """
    return Config(
        retries={"mode": retry_mode, "max_attempts": max_attempts},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        tcp_keepalive=True,
    )


def caller_session() -> boto3.Session:
    """The caller's own credentials (environment, profile, instance or task role)."""
    return boto3.Session()


class _AssumedRoleProvider(CredentialProvider):
    """Hands botocore credentials that re-assume the role shortly before they expire."""

    METHOD = "assume-role"
    CANONICAL_NAME = "b2p-assume-role"

    def __init__(self, fetcher: AssumeRoleCredentialFetcher) -> None:
        super().__init__()
        self._fetcher = fetcher

    def load(self) -> Credentials:
        return DeferredRefreshableCredentials(
            refresh_using=self._fetcher.fetch_credentials, method=self.METHOD
        )


def assumed_role_session(
    role_arn: str,
    *,
    external_id: str | None = None,
    session_name: str = ASSUMED_ROLE_SESSION_NAME,
    duration_seconds: int = 3600,
    source_session: boto3.Session | None = None,
) -> boto3.Session:
    """A session acting as `role_arn` (e.g. a role in FreeWheel's account that can read the bucket).

    The role is assumed with the source session's credentials and re-assumed automatically
    before the temporary credentials expire, so a long ingest run never fails on expiry.
    The first AssumeRole happens here, so a wrong ARN or external id fails fast.
    """
    source = source_session or caller_session()
    source_credentials = source.get_credentials()
    if source_credentials is None:
        raise UserError(
            f"cannot assume role {role_arn}: no AWS credentials found to assume it with; "
            "configure credentials (environment, profile or instance role) first"
        )
    extra_args: dict[str, Any] = {
        "RoleSessionName": session_name,
        "DurationSeconds": duration_seconds,
    }
    if external_id:
        extra_args["ExternalId"] = external_id
    fetcher = AssumeRoleCredentialFetcher(
        client_creator=functools.partial(source.client, config=client_config()),
        source_credentials=source_credentials,
        role_arn=role_arn,
        extra_args=extra_args,
    )
    core = botocore.session.Session()
    core.register_component(
        "credential_provider", CredentialResolver(providers=[_AssumedRoleProvider(fetcher)])
    )
    session = boto3.Session(botocore_session=core, region_name=source.region_name)
    _check_role_can_be_assumed(session, role_arn)
    return session


def _check_role_can_be_assumed(session: boto3.Session, role_arn: str) -> None:
    credentials = session.get_credentials()
    try:
        if credentials is None:
            raise UserError(f"cannot assume role {role_arn}: no credentials were returned")
        credentials.get_frozen_credentials()
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "unknown")
        raise UserError(
            f"cannot assume role {role_arn} ({code}); check the role ARN, the external id "
            "and that the role's trust policy allows this account"
        ) from None
    except BotoCoreError as error:
        raise UserError(f"cannot assume role {role_arn}: {type(error).__name__}") from None


def s3_client(session: boto3.Session | None = None, config: Config | None = None) -> Any:
    """An S3 client with the project's retry policy."""
    return (session or caller_session()).client("s3", config=config or client_config())
