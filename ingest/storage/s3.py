"""The Storage interface on an S3 prefix: the lake in production, and FreeWheel's source bucket.

Reads are streamed (never a whole object in memory) and survive a connection that breaks in
the middle of a body, which botocore's own retries do not cover: the reader resumes with a
ranged GET from where it stopped, pinned to the object's ETag so a replaced object is never
spliced with the old one. Writes are atomic like LocalStorage's: one PutObject for small
content, otherwise a multipart upload that is completed when the block exits cleanly and
aborted when it does not, so no partial object is ever visible and no parts are left behind.
A GET refused with 403 raises `AccessDenied`, like an unreadable local file.
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
from collections.abc import Iterator, Sequence
from typing import Any, BinaryIO

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    IncompleteReadError,
    ReadTimeoutError,
)
from urllib3.exceptions import HTTPError as URLLib3HTTPError

from ingest.errors import UserError
from ingest.storage import aws
from ingest.storage.base import AccessDenied, ObjectChanged, ObjectInfo

log = logging.getLogger(__name__)

MIB = 1024 * 1024
# S3 rejects parts smaller than 5 MiB (except the last one).
MIN_PART_SIZE = 5 * MIB
DEFAULT_PART_SIZE = 16 * MIB
DEFAULT_MAX_READ_RESUMES = 10
DEFAULT_RESUME_DELAY = 0.5
READ_BUFFER_SIZE = 1 * MIB
DELETE_BATCH = 1000  # DeleteObjects accepts at most 1000 keys

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


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix` → ('bucket', 'some/prefix/'); the prefix is '' or ends in '/'."""
    if not uri.startswith("s3://"):
        raise UserError(f"not an S3 URI: {uri!r}; expected s3://bucket/prefix")
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    if not bucket:
        raise UserError(f"no bucket in {uri!r}; expected s3://bucket/prefix")
    return bucket, normalise_prefix(prefix)


def normalise_prefix(prefix: str) -> str:
    stripped = prefix.strip("/")
    return f"{stripped}/" if stripped else ""


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _is_not_found(error: ClientError) -> bool:
    return _error_code(error) in {"404", "NoSuchKey", "NotFound"}


_PRECONDITION_FAILED = frozenset({"PreconditionFailed", "412"})
_ACCESS_DENIED = frozenset({"AccessDenied", "403", "AllAccessDisabled"})


def _is_access_denied(error: ClientError) -> bool:
    return _error_code(error) in _ACCESS_DENIED


def _access_denied(uri: str, error: ClientError) -> AccessDenied:
    return AccessDenied(f"{uri} cannot be read: S3 refused the GET ({_error_code(error)})")


def _strip_quotes(etag: str) -> str:
    return etag.strip('"')


class S3Storage:
    """An S3 bucket and prefix; keys are relative to the prefix."""

    def __init__(
        self,
        bucket: str,
        prefix: str,
        client: Any,
        *,
        part_size: int = DEFAULT_PART_SIZE,
        max_read_resumes: int = DEFAULT_MAX_READ_RESUMES,
        resume_delay: float = DEFAULT_RESUME_DELAY,
    ) -> None:
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes (S3's minimum)")
        self.bucket = bucket
        self.prefix = normalise_prefix(prefix)
        self.client = client
        self.part_size = part_size
        self.max_read_resumes = max_read_resumes
        self.resume_delay = resume_delay
        self.root = f"s3://{bucket}/{self.prefix}".rstrip("/")

    @classmethod
    def from_uri(
        cls,
        uri: str,
        role_arn: str | None = None,
        external_id: str | None = None,
        **options: Any,
    ) -> S3Storage:
        """Storage for `s3://bucket/prefix`; with `role_arn`, acting as that cross-account role."""
        bucket, prefix = parse_s3_uri(uri)
        session = (
            aws.assumed_role_session(role_arn, external_id=external_id)
            if role_arn
            else aws.caller_session()
        )
        return cls(bucket, prefix, aws.s3_client(session), **options)

    def object_key(self, key: str) -> str:
        return self.prefix + key.lstrip("/")

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.object_key(key)}"

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Objects at `prefix` or below it, like a folder: 'a/b' matches 'a/b' and 'a/b/…' only."""
        wanted = prefix.strip("/")
        paginator = self.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=self.bucket, Prefix=self.object_key(wanted))
        for page in pages:
            for item in page.get("Contents", []):
                key = item["Key"][len(self.prefix) :]
                if key.endswith("/"):
                    continue  # a console "folder" marker, not a file
                if wanted and key != wanted and not key.startswith(wanted + "/"):
                    continue
                yield ObjectInfo(key=key, size=int(item["Size"]), etag=_strip_quotes(item["ETag"]))

    def info(self, key: str) -> ObjectInfo | None:
        """Size and ETag of one object, or None when it does not exist."""
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self.object_key(key))
        except ClientError as error:
            if _is_not_found(error):
                return None
            raise
        return ObjectInfo(
            key=key, size=int(head["ContentLength"]), etag=_strip_quotes(head["ETag"])
        )

    def exists(self, key: str) -> bool:
        return self.info(key) is not None

    def read_bytes(self, key: str) -> bytes:
        with self.open_read(key) as handle:
            return handle.read()

    @contextlib.contextmanager
    def open_read(self, key: str, etag: str | None = None) -> Iterator[BinaryIO]:
        """A buffered, streamed reader of the object that resumes after a broken connection.

        With `etag`, the first GET carries If-Match: a replaced object raises `ObjectChanged`.
        """
        raw = ResumableObjectReader(
            self.client,
            self.bucket,
            self.object_key(key),
            max_resumes=self.max_read_resumes,
            resume_delay=self.resume_delay,
            if_match=etag,
        )
        reader = io.BufferedReader(raw, buffer_size=READ_BUFFER_SIZE)
        try:
            yield reader
        finally:
            reader.close()

    def write_bytes(self, key: str, data: bytes) -> None:
        with self.open_write(key) as handle:
            handle.write(data)

    @contextlib.contextmanager
    def open_write(self, key: str) -> Iterator[BinaryIO]:
        """Yield a file to write; it appears under `key` only if the block completes."""
        writer = AtomicObjectWriter(self.client, self.bucket, self.object_key(key), self.part_size)
        try:
            yield writer  # type: ignore[misc]  # a write-only binary file
        except BaseException:
            writer.abort()
            raise
        writer.commit()

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.object_key(key))

    def check_listable(self, option: str) -> None:
        """The bucket exists and the prefix can be listed (a source); an object named like the
        prefix is refused, as `--source FILE` is locally."""
        try:
            page = self.client.list_objects_v2(Bucket=self.bucket, Prefix=self.prefix, MaxKeys=1)
            empty = page.get("KeyCount", 0) == 0
            if empty and self.prefix and self._is_object(self.prefix.rstrip("/")):
                raise UserError(
                    f"{option} {self.root} is an object, not a prefix; pass the prefix that "
                    "holds it"
                )
        except ClientError as error:
            raise UserError(self._refused(option, "list", error)) from None
        except BotoCoreError as error:
            raise UserError(f"{option} {self.root}: cannot reach S3 ({error})") from None

    def _is_object(self, object_key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=object_key)
        except ClientError as error:
            if _is_not_found(error):
                return False
            raise
        return True

    def check_writable(self, option: str, probe_key: str) -> None:
        """The bucket exists and this client can PUT and DELETE under the prefix (a lake)."""
        try:
            self.client.put_object(
                Bucket=self.bucket, Key=self.object_key(probe_key), Body=b"b2p write check\n"
            )
            self.client.delete_object(Bucket=self.bucket, Key=self.object_key(probe_key))
        except ClientError as error:
            raise UserError(self._refused(option, "write to", error)) from None
        except BotoCoreError as error:
            raise UserError(f"{option} {self.root}: cannot reach S3 ({error})") from None

    def _refused(self, option: str, action: str, error: ClientError) -> str:
        code = _error_code(error)
        if code == "NoSuchBucket":
            return f"{option} {self.root}: the bucket {self.bucket} does not exist"
        if _is_access_denied(error):
            return (
                f"{option} {self.root}: access denied when trying to {action} it ({code}); "
                "check the IAM policy of the credentials (or role) in use and the bucket policy"
            )
        return f"{option} {self.root}: S3 refused to {action} it ({code})"

    def sweep_temp_files(self) -> int:
        """Nothing to sweep: an interrupted multipart upload is invisible, and the bucket's
        AbortIncompleteMultipartUpload lifecycle rule removes its parts."""
        return 0

    def delete_tree(self, prefix: str) -> None:
        """Delete every object at or below `prefix` (batched DeleteObjects)."""
        batch: list[str] = []
        for info in self.list(prefix):
            batch.append(self.object_key(info.key))
            if len(batch) == DELETE_BATCH:
                self._delete_batch(batch)
                batch = []
        if batch:
            self._delete_batch(batch)

    def _delete_batch(self, keys: Sequence[str]) -> None:
        response = self.client.delete_objects(
            Bucket=self.bucket,
            Delete={"Objects": [{"Key": key} for key in keys], "Quiet": True},
        )
        failed = response.get("Errors", [])
        if failed:
            first = failed[0]
            raise OSError(
                f"could not delete {len(failed)} object(s) under s3://{self.bucket}/, "
                f"e.g. {first.get('Key')}: {first.get('Code')}"
            )


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
        conditions = {"IfMatch": f'"{_strip_quotes(if_match)}"'} if if_match else {}
        try:
            response = client.get_object(Bucket=bucket, Key=key, **conditions)
        except ClientError as error:
            if if_match and (_is_not_found(error) or _error_code(error) in _PRECONDITION_FAILED):
                raise ObjectChanged(
                    f"s3://{bucket}/{key} is no longer version {_strip_quotes(if_match)}"
                ) from None
            if _is_not_found(error):
                raise FileNotFoundError(f"s3://{bucket}/{key} does not exist") from None
            if _is_access_denied(error):
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
            if _error_code(failure) in _PRECONDITION_FAILED:
                raise S3ReadError(
                    f"{where} was replaced while it was being read; read it again"
                ) from None
            if _is_access_denied(failure):
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
                if _error_code(error) != "NoSuchUpload":  # already gone: nothing lingers
                    self._log_abort_failure(_error_code(error))
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
