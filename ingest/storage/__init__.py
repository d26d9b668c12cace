"""Where data lives: a local folder or an S3 prefix, behind one small interface (`Storage`).

The lake is written through it, and FreeWheel's delivery is read through it, so every wing above
works the same on a laptop and on AWS. S3 (and boto3) is imported only when an `s3://` URI is
opened. A local temp file left by a killed writer is removed by `sweep_temp_files`; S3 leaves an
invisible multipart upload, removed by the bucket's AbortIncompleteMultipartUpload lifecycle rule.
"""

from __future__ import annotations

import os

from ingest.storage.base import AccessDenied, BrokenLink, ObjectChanged, ObjectInfo, Storage
from ingest.storage.local import TEMP_PREFIX, LocalStorage

__all__ = [
    "TEMP_PREFIX",
    "AccessDenied",
    "BrokenLink",
    "LocalStorage",
    "ObjectChanged",
    "ObjectInfo",
    "Storage",
    "is_s3_uri",
    "open_storage",
]


def is_s3_uri(uri: str | os.PathLike[str]) -> bool:
    return str(uri).startswith("s3://")


def open_storage(
    uri: str | os.PathLike[str], role_arn: str | None = None, external_id: str | None = None
) -> Storage:
    """The storage for a lake or source URI: `s3://bucket/prefix` or a local folder.

    With `role_arn` (S3 only), the bucket is read and written as that role, e.g. one in
    FreeWheel's account.
    """
    if is_s3_uri(uri):
        from ingest.storage.s3 import S3Storage  # boto3 is imported only when S3 is used

        return S3Storage.from_uri(str(uri), role_arn=role_arn, external_id=external_id)
    return LocalStorage(uri)
