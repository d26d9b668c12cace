"""What can go wrong talking to FreeWheel's Publisher API: `UserError`s whose message says why
and what to do. They never carry a password, a token or a request body, nor an urllib3
exception as cause or context."""

from __future__ import annotations

from ingest.errors import UserError


class FreeWheelApiError(UserError):
    """The API could not give what was asked; the message says why and what to do."""


class BadCredentialsError(FreeWheelApiError):
    pass


class PermissionDeniedError(FreeWheelApiError):
    pass


class DeadlineExceededError(FreeWheelApiError):
    pass


class ApiUnavailableError(FreeWheelApiError):
    pass


class UnexpectedResponseError(FreeWheelApiError):
    pass
