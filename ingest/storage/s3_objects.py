"""Streaming one S3 object: a reader that survives broken connections, a writer that is atomic.

Reads are streamed (never a whole object in memory) and survive a connection that breaks in
the middle of a body, which botocore's own retries do not cover: the reader resumes with a
ranged GET from where it stopped, pinned to the object's ETag so a replaced object is never
spliced with the old one. Writes are atomic: one PutObject for small content, otherwise a
multipart upload that is completed when the block exits cleanly and aborted when it does not,
so no partial object is ever visible and no parts are left behind. A GET refused with 403
raises `AccessDenied`, like an unreadable local file. `ingest.storage.s3.S3Storage` uses both.
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    IncompleteReadError,
    ReadTimeoutError,
)
from urllib3.exceptions import HTTPError as URLLib3HTTPError

from ingest.storage.base import AccessDenied, ObjectChanged

log = logging.getLogger(__name__)

MIB = 1024 * 1024
# S3 rejects parts smaller than 5 MiB (except the last one).
MIN_PART_SIZE = 5 * MIB
DEFAULT_PART_SIZE = 16 * MIB
DEFAULT_MAX_READ_RESUMES = 10
DEFAULT_RESUME_DELAY = 0.5

# What a body read raises when the connection breaks after the headers arrived. A checksum
# mismatch (FlexibleChecksumError) is deliberately absent: resuming would hide corruption.
_BROKEN_BODY_ERRORS: tuple[type[BaseException], ...] = (
    HTTPClientError,  # ResponseStreamingError, ConnectionClosedError
    IncompleteReadError,
    ReadTimeoutError,
    URLLib3HTTPError,
    ConnectionError,  # the builtin one: socket errors such as a reset
    TimeoutError,
)


class S3ReadError(OSError):
    """A streamed read could not be completed (connection kept breaking, or object replaced)."""


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def is_not_found(error: ClientError) -> bool:
    return error_code(error) in {"404", "NoSuchKey", "NotFound"}


PRECONDITION_FAILED = frozenset({"PreconditionFailed", "412"})
_ACCESS_DENIED = frozenset({"AccessDenied", "403", "AllAccessDisabled"})


def is_access_denied(error: ClientError) -> bool:
    return error_code(error) in _ACCESS_DENIED


def _access_denied(uri: str, error: ClientError) -> AccessDenied:
    return AccessDenied(f"{uri} cannot be read: S3 refused the GET ({error_code(error)})")


def strip_quotes(etag: str) -> str:
    return etag.strip('"')


class ResumableObjectReader(io.RawIOBase):
    """A GetObject body that, when the connection breaks, continues with a ranged GET.

    The ranged GET carries If-Match with the ETag of the first response, so if the object
    was replaced in between the read fails instead of mixing two versions. At most
    `max_resumes` resumes per object, then the read fails.
    """

    def __init__(
        self,
        client: Any,
        bucket: str,
        key: str,
        *,
        max_resumes: int = DEFAULT_MAX_READ_RESUMES,
        resume_delay: float = DEFAULT_RESUME_DELAY,
        if_match: str | None = None,
    ) -> None:
        super().__init__()
        self._client = client
        self._bucket = bucket
        self._key = key
        self._max_resumes = max_resumes
        self._resume_delay = resume_delay
        self.resumes = 0
        self._offset = 0
        conditions = {"IfMatch": f'"{strip_quotes(if_match)}"'} if if_match else {}
        try:
            response = client.get_object(Bucket=bucket, Key=key, **conditions)
        except ClientError as error:
            if if_match and (is_not_found(error) or error_code(error) in PRECONDITION_FAILED):
                raise ObjectChanged(
                    f"s3://{bucket}/{key} is no longer version {strip_quotes(if_match)}"
                ) from None
            if is_not_found(error):
                raise FileNotFoundError(f"s3://{bucket}/{key} does not exist") from None
            if is_access_denied(error):
                raise _access_denied(f"s3://{bucket}/{key}", error) from None
            raise
        self.etag: str = response["ETag"]  # quoted, as If-Match wants it
        self.size = int(response["ContentLength"])
        self._body = response["Body"]

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._offset

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if not len(view) or self._offset >= self.size:
            return 0
        while True:
            try:
                count = self._body.readinto(view)
            except _BROKEN_BODY_ERRORS as error:
                self._resume(error)
                continue
            if count == 0:
                # the server closed the body early without an error of its own
                self._resume(None)
                continue
            self._offset += count
            return int(count)

    def _resume(self, error: BaseException | None) -> None:
        where = f"s3://{self._bucket}/{self._key}"
        if self.resumes >= self._max_resumes:
            raise S3ReadError(
                f"{where}: the connection broke {self.resumes + 1} times while reading "
                f"(at byte {self._offset} of {self.size}); giving up"
            ) from error
        self.resumes += 1
        log.warning(
            "resuming broken S3 read",
            extra={
                "fields": {
                    "uri": where,
                    "offset": self._offset,
                    "size": self.size,
                    "attempt": self.resumes,
                    "error": type(error).__name__ if error else "short body",
                }
            },
        )
        self._close_body()
        time.sleep(self._resume_delay * self.resumes)
        try:
            response = self._client.get_object(
                Bucket=self._bucket,
                Key=self._key,
                Range=f"bytes={self._offset}-",
                IfMatch=self.etag,
            )
        except ClientError as failure:
            if error_code(failure) in PRECONDITION_FAILED:
                raise S3ReadError(
                    f"{where} was replaced while it was being read; read it again"
                ) from None
            if is_access_denied(failure):
                raise _access_denied(where, failure) from None
            raise
        self._body = response["Body"]

    def _close_body(self) -> None:
        with contextlib.suppress(Exception):
            self._body.close()

    def close(self) -> None:
        if not self.closed:
            self._close_body()
        super().close()


class AtomicObjectWriter(io.RawIOBase):
    """Write-only file for one S3 object: buffered up to one part, then multipart.

    Nothing is visible until `commit()`; `abort()` discards everything, including the parts
    of a multipart upload already sent. Memory stays around one part whatever the size.
    """

    def __init__(self, client: Any, bucket: str, key: str, part_size: int) -> None:
        super().__init__()
        self._client = client
        self._bucket = bucket
        self._key = key
        self._part_size = part_size
        self._buffer = bytearray()
        self._written = 0
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._written

    def write(self, data: Any) -> int:
        if self.closed:
            raise ValueError("write to a closed S3 object writer")
        view = memoryview(data).cast("B")
        self._buffer += view
        self._written += len(view)
        while len(self._buffer) >= self._part_size:
            self._upload_part(bytes(self._buffer[: self._part_size]))
            del self._buffer[: self._part_size]
        return len(view)

    def close(self) -> None:
        # Closing is not committing: a caller (a pyarrow or gzip writer) may close the
        # handle before the block ends; the context manager decides commit or abort.
        super().close()

    def _upload_part(self, chunk: bytes) -> None:
        if self._upload_id is None:
            created = self._client.create_multipart_upload(
                Bucket=self._bucket, Key=self._key, ChecksumAlgorithm="CRC32"
            )
            self._upload_id = created["UploadId"]
        number = len(self._parts) + 1
        response = self._client.upload_part(
            Bucket=self._bucket,
            Key=self._key,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=chunk,
            ChecksumAlgorithm="CRC32",
        )
        part: dict[str, Any] = {"PartNumber": number, "ETag": response["ETag"]}
        if "ChecksumCRC32" in response:
            part["ChecksumCRC32"] = response["ChecksumCRC32"]
        self._parts.append(part)

    def commit(self) -> None:
        try:
            if self._upload_id is None:
                self._client.put_object(
                    Bucket=self._bucket, Key=self._key, Body=bytes(self._buffer)
                )
            else:
                if self._buffer:
                    self._upload_part(bytes(self._buffer))
                self._complete_multipart()
        except BaseException:
            self.abort()
            raise
        finally:
            self._buffer = bytearray()
            super().close()

    def _complete_multipart(self) -> None:
        # Completion is idempotent on S3 (a retry after a lost answer gets the same 200),
        # so botocore's retries are enough here.
        self._client.complete_multipart_upload(
            Bucket=self._bucket,
            Key=self._key,
            UploadId=self._upload_id,
            MultipartUpload={"Parts": self._parts},
        )
        self._upload_id = None

    def abort(self) -> None:
        """Discard what was written; safe to call more than once."""
        upload_id, self._upload_id = self._upload_id, None
        self._buffer = bytearray()
        if upload_id is not None:
            try:
                self._client.abort_multipart_upload(
                    Bucket=self._bucket, Key=self._key, UploadId=upload_id
                )
            except ClientError as error:
                if error_code(error) != "NoSuchUpload":  # already gone: nothing lingers
                    self._log_abort_failure(error_code(error))
            except BotoCoreError as error:
                # never mask the error that made us abort; a bucket lifecycle rule
                # (AbortIncompleteMultipartUpload) cleans up what is left
                self._log_abort_failure(type(error).__name__)
        super().close()

    def _log_abort_failure(self, reason: str) -> None:
        log.warning(
            "could not abort multipart upload",
            extra={"fields": {"uri": f"s3://{self._bucket}/{self._key}", "error": reason}},
        )
