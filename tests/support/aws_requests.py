"""What an AWS API request asks IAM for: the action(s), the resource ARN(s) and condition keys.

AWS authorizes each request against the caller's policies; this module names, for one HTTP
request as boto3 or Trino's AWS SDK send it, which authorizations AWS would make, following
AWS's documentation of each service's actions, resources and condition keys:
- S3 (REST, path-style): the action per operation (ListObjectsV2 and HeadBucket are
  s3:ListBucket on the bucket with the s3:prefix key; DeleteObjects is s3:DeleteObject on every
  key; CopyObject also reads its source); s3:ResourceAccount is the bucket owner's account;
- JSON services (Glue, Athena, SQS, Secrets Manager, KMS, Lake Formation, CloudWatch Logs): the
  X-Amz-Target operation; Glue catalog operations need the catalog, the database and (for table
  and partition operations) the table ARN; Athena query operations the workgroup's ARN;
- STS (query protocol): AssumeRole on the role; GetCallerIdentity needs no permission.
- Implied authorizations: S3 asks KMS for the caller's kms:GenerateDataKey when it writes to an
  SSE-KMS bucket and kms:Decrypt when it reads from one; SQS does the same for an encrypted
  queue. They are made with the caller's permissions, so they are checked too (`implied`).
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.support.iam import Request

ACCOUNT = "123456789012"  # moto's account: owner of every bucket, queue and table it creates
REGION = "us-east-1"

_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")
_TARGET_SERVICES = {
    "AWSGlue": "glue",
    "AmazonAthena": "athena",
    "AmazonSQS": "sqs",
    "secretsmanager": "secretsmanager",
    "TrentService": "kms",
    "Logs_20140328": "logs",
    "AWSLakeFormation": "lakeformation",
}
_SQS_ACTIONS = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}
_GLUE_DATABASE_OPS = {"GetDatabase", "CreateDatabase", "UpdateDatabase", "DeleteDatabase"}


@dataclass(frozen=True)
class Authorization:
    request: Request
    implied: bool = False  # made by the service on the caller's behalf (KMS for S3/SQS)


@dataclass
class ParsedCall:
    access_key: str | None
    service: str
    operation: str
    params: dict[str, Any] = field(default_factory=dict)
    authorizations: list[Authorization] = field(default_factory=list)


@dataclass(frozen=True)
class Encryption:
    """Which buckets and queues are encrypted with which KMS key (from the stack)."""

    buckets: Mapping[str, str] = field(default_factory=dict)  # bucket -> key ARN
    queues: Mapping[str, str] = field(default_factory=dict)  # queue name -> key ARN


def credential(
    headers: Mapping[str, str], query: Mapping[str, list[str]]
) -> tuple[str | None, str | None]:
    """(access key id, service) from a SigV4 Authorization header or a presigned URL."""
    authorization = headers.get("authorization", "")
    found = _CREDENTIAL.search(authorization)
    if found:
        return found[1], found[3]
    presigned = (query.get("X-Amz-Credential") or [""])[0]
    parts = presigned.split("/")
    if len(parts) >= 5:
        return parts[0], parts[3]
    return None, None


def parse(
    method: str,
    path: str,
    query_string: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    encryption: Encryption = Encryption(),
    workgroup_of_query: Callable[[str], str | None] = lambda _: None,
) -> ParsedCall:
    """The service, operation and authorizations of one request (headers lower-cased)."""
    query = urllib.parse.parse_qs(query_string, keep_blank_values=True)
    access_key, service = credential(headers, query)
    target = headers.get("x-amz-target", "")
    if target:
        prefix, _, operation = target.partition(".")
        service = _TARGET_SERVICES.get(prefix, service or prefix)
        params = json.loads(body or b"{}") if body.strip() else {}
        call = ParsedCall(access_key, service or "unknown", operation, params)
        call.authorizations = _json_authorizations(call, encryption, workgroup_of_query)
        return call
    if service in (None, "s3"):
        call = _s3_call(access_key, method, path, query, headers, body, encryption)
        return call
    if service == "sts":
        form = urllib.parse.parse_qs(body.decode() if body else query_string)
        operation = (form.get("Action") or [""])[0]
        params = {k: v[0] for k, v in form.items()}
        call = ParsedCall(access_key, "sts", operation, params)
        if operation == "AssumeRole":
            call.authorizations = [Authorization(Request("sts:AssumeRole", params["RoleArn"]))]
        return call
    if service == "lakeformation":
        operation = path.strip("/").split("/")[-1]
        call = ParsedCall(access_key, service, operation, json.loads(body or b"{}"))
        call.authorizations = [Authorization(Request(f"lakeformation:{operation}", "*"))]
        return call
    return ParsedCall(access_key, service, f"{method} {path}")


# ---------------------------------------------------------------------------------- S3


def _s3_arn(bucket: str, key: str | None = None) -> str:
    return f"arn:aws:s3:::{bucket}" + (f"/{key}" if key is not None else "")


def _s3_operation(method: str, key: str | None, query: Mapping[str, list[str]], headers) -> str:
    has = query.__contains__
    if key is None:
        if method == "GET":
            for sub, name in (
                ("location", "GetBucketLocation"),
                ("versions", "ListObjectVersions"),
                ("uploads", "ListMultipartUploads"),
                ("lifecycle", "GetBucketLifecycleConfiguration"),
                ("encryption", "GetBucketEncryption"),
                ("versioning", "GetBucketVersioning"),
                ("policy", "GetBucketPolicy"),
                ("acl", "GetBucketAcl"),
                ("tagging", "GetBucketTagging"),
            ):
                if has(sub):
                    return name
            return "ListObjectsV2" if (query.get("list-type") or [""])[0] == "2" else "ListObjects"
        if method == "HEAD":
            return "HeadBucket"
        if method == "POST" and has("delete"):
            return "DeleteObjects"
        if method == "PUT":
            for sub, name in (
                ("lifecycle", "PutBucketLifecycleConfiguration"),
                ("versioning", "PutBucketVersioning"),
                ("encryption", "PutBucketEncryption"),
                ("policy", "PutBucketPolicy"),
                ("tagging", "PutBucketTagging"),
            ):
                if has(sub):
                    return name
            return "CreateBucket"
        if method == "DELETE":
            return "DeleteBucket"
        return f"{method}Bucket"
    if method in ("GET", "HEAD"):
        if has("uploadId"):
            return "ListParts"
        if has("tagging"):
            return "GetObjectTagging"
        return "GetObject" if method == "GET" else "HeadObject"
    if method == "PUT":
        if has("tagging"):
            return "PutObjectTagging"
        if has("partNumber"):
            return "UploadPartCopy" if "x-amz-copy-source" in headers else "UploadPart"
        return "CopyObject" if "x-amz-copy-source" in headers else "PutObject"
    if method == "POST":
        if has("uploads"):
            return "CreateMultipartUpload"
        if has("uploadId"):
            return "CompleteMultipartUpload"
        return "PostObject"
    if method == "DELETE":
        return "AbortMultipartUpload" if has("uploadId") else "DeleteObject"
    return f"{method}Object"


_S3_ACTIONS = {
    "ListObjectsV2": "s3:ListBucket",
    "ListObjects": "s3:ListBucket",
    "HeadBucket": "s3:ListBucket",
    "ListObjectVersions": "s3:ListBucketVersions",
    "ListMultipartUploads": "s3:ListBucketMultipartUploads",
    "GetObject": "s3:GetObject",
    "HeadObject": "s3:GetObject",
    "PutObject": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "CopyObject": "s3:PutObject",
    "UploadPartCopy": "s3:PutObject",
    "ListParts": "s3:ListMultipartUploadParts",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "DeleteObject": "s3:DeleteObject",
    "GetObjectTagging": "s3:GetObjectTagging",
    "PutObjectTagging": "s3:PutObjectTagging",
    "GetBucketLifecycleConfiguration": "s3:GetLifecycleConfiguration",
    "PutBucketLifecycleConfiguration": "s3:PutLifecycleConfiguration",
}


def _s3_call(access_key, method, path, query, headers, body, encryption: Encryption):
    parts = urllib.parse.unquote(path).lstrip("/").split("/", 1)
    bucket = parts[0]
    key = parts[1] if len(parts) > 1 and parts[1] != "" else None
    if not bucket:
        return ParsedCall(access_key, "s3", "ListBuckets", {}, [])
    operation = _s3_operation(method, key, query, headers)
    params: dict[str, Any] = {"Bucket": bucket}
    if key is not None:
        params["Key"] = key
    for name in ("prefix", "delimiter", "versionId", "uploadId"):
        if name in query:
            params[name] = query[name][0]
    context = {"s3:ResourceAccount": ACCOUNT}
    action = _S3_ACTIONS.get(operation, f"s3:{operation}")
    authorizations: list[Authorization] = []
    if operation in ("ListObjectsV2", "ListObjects", "HeadBucket", "ListObjectVersions"):
        listing = dict(context, **{"s3:prefix": params.get("prefix", "")})
        if "delimiter" in params:
            listing["s3:delimiter"] = params["delimiter"]
        authorizations.append(Authorization(Request(action, _s3_arn(bucket), listing)))
    elif operation == "DeleteObjects":
        keys = re.findall(rb"<Key>(.*?)</Key>", body or b"")
        params["Keys"] = [k.decode() for k in keys]
        authorizations += [
            Authorization(Request("s3:DeleteObject", _s3_arn(bucket, k), context))
            for k in params["Keys"]
        ]
    elif key is None:
        authorizations.append(Authorization(Request(action, _s3_arn(bucket), context)))
    else:
        if operation in ("GetObject", "HeadObject") and "versionId" in params:
            action = "s3:GetObjectVersion"
        if operation == "DeleteObject" and "versionId" in params:
            action = "s3:DeleteObjectVersion"
        authorizations.append(Authorization(Request(action, _s3_arn(bucket, key), context)))
        if operation in ("CopyObject", "UploadPartCopy"):
            source = urllib.parse.unquote(headers["x-amz-copy-source"]).lstrip("/").split("?")[0]
            source_bucket, _, source_key = source.partition("/")
            params["CopySource"] = source
            authorizations.append(
                Authorization(Request("s3:GetObject", _s3_arn(source_bucket, source_key), context))
            )
            _kms(authorizations, encryption.buckets.get(source_bucket), "kms:Decrypt")
        if operation == "GetObject":
            _kms(authorizations, encryption.buckets.get(bucket), "kms:Decrypt")
        if operation in ("PutObject", "CreateMultipartUpload", "CopyObject"):
            _kms(authorizations, encryption.buckets.get(bucket), "kms:GenerateDataKey")
        if operation == "CreateMultipartUpload":  # S3 decrypts the data key for each part
            _kms(authorizations, encryption.buckets.get(bucket), "kms:Decrypt")
    return ParsedCall(access_key, "s3", operation, params, authorizations)


def _kms(authorizations: list[Authorization], key_arn: str | None, action: str) -> None:
    if key_arn:
        authorizations.append(Authorization(Request(action, key_arn), implied=True))


# ---------------------------------------------------------------------------------- JSON


def _glue_arns(operation: str, params: Mapping[str, Any]) -> list[str]:
    base = f"arn:aws:glue:{REGION}:{params.get('CatalogId') or ACCOUNT}"
    catalog = f"{base}:catalog"
    if operation == "GetDatabases":
        return [catalog]
    if operation in _GLUE_DATABASE_OPS:
        name = params.get("Name") or params.get("DatabaseInput", {}).get("Name")
        return [catalog, f"{base}:database/{name}"]
    database = params.get("DatabaseName")
    if database is None:
        return [catalog]
    arns = [catalog, f"{base}:database/{database}"]
    if operation in ("GetTables", "SearchTables"):
        return [*arns, f"{base}:table/{database}/*"]
    if operation == "BatchDeleteTable":
        return [*arns, *(f"{base}:table/{database}/{t}" for t in params.get("TablesToDelete", []))]
    table = (
        params.get("TableName")
        or params.get("Name")
        or (params.get("TableInput") or {}).get("Name")
    )
    if table is not None:
        arns.append(f"{base}:table/{database}/{table}")
    return arns


def _queue_arn(url_or_name: str) -> str:
    name = url_or_name.rstrip("/").rsplit("/", 1)[-1]
    return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"


def _json_authorizations(
    call: ParsedCall, encryption: Encryption, workgroup_of_query: Callable[[str], str | None]
) -> list[Authorization]:
    service, operation, params = call.service, call.operation, call.params
    if service == "glue":
        action = f"glue:{operation}"
        return [Authorization(Request(action, arn)) for arn in _glue_arns(operation, params)]
    if service == "athena":
        action = f"athena:{operation}"
        prefix = f"arn:aws:athena:{REGION}:{ACCOUNT}"
        if operation in (
            "GetDataCatalog",
            "GetDatabase",
            "ListDatabases",
            "ListTableMetadata",
            "GetTableMetadata",
        ):
            name = params.get("Name") or params.get("CatalogName") or "AwsDataCatalog"
            if name.lower() == "awsdatacatalog":
                name = "AwsDataCatalog"
            return [Authorization(Request(action, f"{prefix}:datacatalog/{name}"))]
        if operation == "ListDataCatalogs":
            return [Authorization(Request(action, f"{prefix}:datacatalog/*"))]
        workgroup = params.get("WorkGroup")
        if workgroup is None and "QueryExecutionId" in params:
            workgroup = workgroup_of_query(params["QueryExecutionId"])
        if workgroup is None and operation == "BatchGetQueryExecution":
            ids = params.get("QueryExecutionIds") or []
            workgroup = next(filter(None, map(workgroup_of_query, ids)), None)
        return [Authorization(Request(action, f"{prefix}:workgroup/{workgroup or 'primary'}"))]
    if service == "sqs":
        action = "sqs:" + _SQS_ACTIONS.get(operation, operation)
        queue = params.get("QueueUrl") or params.get("QueueName") or ""
        arn = _queue_arn(queue)
        authorizations = [Authorization(Request(action, arn))]
        key = encryption.queues.get(arn.rsplit(":", 1)[1])
        if action == "sqs:SendMessage":  # a producer needs both (SQS's documentation)
            _kms(authorizations, key, "kms:GenerateDataKey")
            _kms(authorizations, key, "kms:Decrypt")
        if action == "sqs:ReceiveMessage":
            _kms(authorizations, key, "kms:Decrypt")
        return authorizations
    if service == "secretsmanager":
        return [Authorization(Request(f"secretsmanager:{operation}", params.get("SecretId", "*")))]
    if service == "kms":
        return [Authorization(Request(f"kms:{operation}", params.get("KeyId", "*")))]
    if service == "logs":
        group = params.get("logGroupName", "")
        arn = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{group}"
        return [Authorization(Request(f"logs:{operation}", arn))]
    if service == "lakeformation":
        return [Authorization(Request(f"lakeformation:{operation}", "*"))]
    return [Authorization(Request(f"{service}:{operation}", "*"))]
