"""The Storage interface on an S3 prefix: the lake in production, and FreeWheel's source bucket.

Objects are read and written through `ingest.storage.s3_objects`: streamed reads that resume
after a broken connection, pinned to the ETag; writes that are atomic like LocalStorage's (one
PutObject, or a multipart upload completed only when the block exits cleanly). A GET refused
with 403 raises `AccessDenied`, like an unreadable local file.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator, Sequence
from typing import Any, BinaryIO

from botocore.exceptions import BotoCoreError, ClientError

from ingest.errors import UserError
from ingest.storage import aws
from ingest.storage.base import ObjectInfo
from ingest.storage.s3_objects import (
    DEFAULT_MAX_READ_RESUMES,
    DEFAULT_PART_SIZE,
    DEFAULT_RESUME_DELAY,
    MIB,
    MIN_PART_SIZE,
    AtomicObjectWriter,
    ResumableObjectReader,
    S3ReadError,
    error_code,
    is_access_denied,
    is_not_found,
    strip_quotes,
)

__all__ = ["MIN_PART_SIZE", "S3ReadError", "S3Storage", "parse_s3_uri"]

log = logging.getLogger(__name__)

READ_BUFFER_SIZE = 1 * MIB
DELETE_BATCH = 1000  # DeleteObjects accepts at most 1000 keys


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
        """Objects at `prefix` or below it, like a folder: 'a/b' matches 'a/b' and 'a/b/…' only.

        A prefix ending in '/' is listed as exactly that (the folder's contents): a role whose
        s3:ListBucket is limited to `s3:prefix` `a/b/*`, as the stack's roles are, may list
        'a/b/' but not 'a/b'.
        """
        wanted = prefix.strip("/")
        folder = prefix.endswith("/") and bool(wanted)
        listed = self.object_key(wanted) + ("/" if folder else "")
        paginator = self.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=self.bucket, Prefix=listed)
        for page in pages:
            for item in page.get("Contents", []):
                key = item["Key"][len(self.prefix) :]
                if key.endswith("/"):
                    continue  # a console "folder" marker, not a file
                if wanted and key != wanted and not key.startswith(wanted + "/"):
                    continue
                yield ObjectInfo(key=key, size=int(item["Size"]), etag=strip_quotes(item["ETag"]))

    def info(self, key: str) -> ObjectInfo | None:
        """Size and ETag of one object, or None when it does not exist."""
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self.object_key(key))
        except ClientError as error:
            if is_not_found(error):
                return None
            raise
        return ObjectInfo(key=key, size=int(head["ContentLength"]), etag=strip_quotes(head["ETag"]))

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
            if is_not_found(error):
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
        code = error_code(error)
        if code == "NoSuchBucket":
            return f"{option} {self.root}: the bucket {self.bucket} does not exist"
        if is_access_denied(error):
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
