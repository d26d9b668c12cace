"""AWS Lambda entry points of the scheduled ingest fan-out (deployed by `infra/`):

    EventBridge schedule → planner_handler → SQS (one message per new object) → worker_handler

Both read their configuration from the environment the stack sets: `B2P_SOURCE`
(`s3://bucket/prefix/` of FreeWheel's delivery), `B2P_LAKE`, `B2P_QUEUE_URL`, and optionally
`B2P_SOURCE_ROLE_ARN` / `B2P_SOURCE_EXTERNAL_ID` to read the source through a role in
FreeWheel's account (the lake and the queue always use the function's own role). Optional too:
`B2P_COLUMN_ALIASES` (worker), a local path or `s3://` URI of the column-alias file (`b2p ingest
--column-aliases`), read once per cold start; `B2P_RETRY_QUARANTINED` (planner, `true`/`false`,
default false): queue quarantined versions again, like `--retry-quarantined`. Each planner run
does so while it is `true`, so set it back to `false` after the run that re-queued them.

The planner lists the source, drops versions already in the ingest log (one LIST of
`_ingest/log/`) and duplicates within the listing, and sends one message per object:
`{"source": <B2P_SOURCE>, "key": <key under it>, "etag": ..., "size": ...}`, plus
`"retry_quarantined": true` when re-queueing: the worker then ingests a quarantined version again
instead of skipping it as logged. `B2P_MAX_RECORD_BYTES`, `B2P_MAX_FIELD_BYTES` and
`B2P_MAX_RECORD_LINES` (worker, optional) are `b2p ingest`'s record limits, and
`B2P_INGEST_THREADS` (worker, optional) its `--threads` (default: the function's cores).

The worker ingests the object a message names with `ingest.logs.attempt.ingest_object`, so the
crash-safety protocol of `ingest.logs.lake` holds here too. It is idempotent: before reading it
asks the object's CURRENT version (HEAD) and skips it when that version is already logged, so a
message delivered twice, or queued again by a planner run that started before the first worker
finished, writes nothing more. A HEAD that answers 404 means the object was deleted; 403 means the
worker cannot see it (deleted, and the role may not list the bucket, or access was revoked): either
way the message is dropped with a warning that says so, and an object that still exists is queued
again by the next planner run, as nothing was logged for it. A refusal (403 on HEAD or GET) counts
as a failure of that version in `_ingest/failures/`; refused again on the next attempt, the version
is quarantined, so the planner stops queueing it (like `b2p ingest`). When the object changed since
planning, the worker ingests the current version (logged under its own ETag; the next planner run
then finds it logged) rather than failing the message: the old version's rows are replaced either
way, and this saves a planning cycle. If the object changes again while being read (the read is
pinned to the ETag), the attempt stops with nothing visible and the message succeeds: the next
planner run queues the newest version. An unexpected error (throttling beyond the retries, a bug)
fails just that message (`batchItemFailures`), so SQS redelivers it and, after the queue's
maxReceiveCount, moves it to the dead-letter queue. A quarantined file is a success: it is recorded
in the lake. So a file that can never be read (binary, broken gzip, a header without the required
columns, access denied twice) ends as a quarantine record and a successful batch item, never in
redelivery and the dead-letter queue.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import posixpath
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from ingest.logs.attempt import STATUS_FAILED, IngestResult, ingest_object, log_result, refused
from ingest.logs.contract import FeedMapping, load_aliases, parse_aliases
from ingest.logs.lake import IngestLog, VersionCommit, source_id_for
from ingest.logs.reader import THREADS_VARIABLE, default_threads
from ingest.logs.records import RecordLimits
from ingest.logs.runner import SourceAccess, plan, worker_storages
from ingest.logs.runtime import bound_arrow_memory
from ingest.storage import ObjectChanged, ObjectInfo, Storage, aws, is_s3_uri, open_storage
from ingest.structured_logging import configure_logging

log = logging.getLogger(__name__)

SQS_BATCH = 10  # SendMessageBatch takes at most 10 entries
SEND_ATTEMPTS = 3  # of the entries a batch reports failed (botocore retries whole calls)


class HandlerConfigError(RuntimeError):
    """The function's environment lacks a setting; a deployment problem, not bad input."""


@dataclass(frozen=True)
class HandlerConfig:
    source: str
    lake: str
    queue_url: str | None
    source_role_arn: str | None = None
    source_external_id: str | None = None
    column_aliases: str | None = None
    retry_quarantined: bool = False
    limits: RecordLimits = field(default_factory=RecordLimits)
    threads: int = 1

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, need_queue: bool) -> HandlerConfig:
        missing = [
            name
            for name in ("B2P_SOURCE", "B2P_LAKE", *(["B2P_QUEUE_URL"] if need_queue else []))
            if not env.get(name)
        ]
        if missing:
            raise HandlerConfigError(
                f"environment variable(s) {', '.join(missing)} not set; the stack in infra/ "
                "sets them on the function"
            )
        retry = env.get("B2P_RETRY_QUARANTINED", "").strip().lower() or "false"
        if retry not in ("true", "false"):
            raise HandlerConfigError(
                f"B2P_RETRY_QUARANTINED must be 'true' or 'false', not {retry!r}"
            )
        return cls(
            limits=_limits_from_env(env),
            threads=_threads_from_env(env),
            source=env["B2P_SOURCE"],
            lake=env["B2P_LAKE"],
            queue_url=env.get("B2P_QUEUE_URL") or None,
            source_role_arn=env.get("B2P_SOURCE_ROLE_ARN") or None,
            source_external_id=env.get("B2P_SOURCE_EXTERNAL_ID") or None,
            column_aliases=env.get("B2P_COLUMN_ALIASES") or None,
            retry_quarantined=retry == "true",
        )

    def source_access(self) -> SourceAccess:
        return SourceAccess(self.source, self.source_role_arn, self.source_external_id)

    def aliases(self) -> FeedMapping:
        return column_aliases(self.column_aliases) if self.column_aliases else FeedMapping()


def _threads_from_env(env: Mapping[str, str]) -> int:
    """`B2P_INGEST_THREADS`, or the function's cores (2 at the stack's 3,008 MB)."""
    return _positive_from_env(env, THREADS_VARIABLE) or default_threads()


def _positive_from_env(env: Mapping[str, str], name: str) -> int | None:
    text = env.get(name, "").strip()
    if text and not (text.isdigit() and int(text) > 0):
        raise HandlerConfigError(f"{name} must be a whole number of 1 or more, not {text!r}")
    return int(text) if text else None


def _limits_from_env(env: Mapping[str, str]) -> RecordLimits:
    names = ("B2P_MAX_RECORD_BYTES", "B2P_MAX_FIELD_BYTES", "B2P_MAX_RECORD_LINES")
    values = [_positive_from_env(env, name) for name in names]
    try:
        return RecordLimits.given(*values)
    except ValueError as exc:
        raise HandlerConfigError(f"{', '.join(names)}: {exc}") from None


@functools.cache  # once per cold start: a warm Lambda reuses it for every message
def column_aliases(location: str) -> FeedMapping:
    """The alias file at a local path or an `s3://` URI (read with the function's own role)."""
    if not is_s3_uri(location):
        return load_aliases(location)
    folder, name = posixpath.split(location)
    return parse_aliases(open_storage(folder).read_bytes(name).decode("utf-8-sig"), location)


# ------------------------------------------------------------------------------ planner


def planner_handler(event: Mapping[str, Any], context: Any) -> dict[str, int]:
    """Scheduled: queue every source object version that is not in the ingest log yet."""
    _configure_logging_in_lambda()
    config = HandlerConfig.from_env(os.environ, need_queue=True)
    assert config.queue_url is not None
    sqs = aws.caller_session().client("sqs", config=aws.client_config())
    source = config.source_access().open()
    lake = open_storage(config.lake)
    return plan_and_enqueue(
        source, lake, sqs, config.queue_url, config.source, config.retry_quarantined
    )


def plan_and_enqueue(
    source: Storage,
    lake: Storage,
    sqs: Any,
    queue_url: str,
    source_uri: str,
    retry_quarantined: bool = False,
) -> dict[str, int]:
    todo, skipped = plan(source, lake, retry_quarantined=retry_quarantined)
    unique = list({info.key: info for info in todo}.values())
    bodies = [message_body(source_uri, info, retry_quarantined) for info in unique]
    for start in range(0, len(bodies), SQS_BATCH):
        _send_batch(sqs, queue_url, bodies[start : start + SQS_BATCH])
    summary = {"queued": len(bodies), "skipped": skipped}
    log.info(
        "planned %d new object(s), %d already ingested",
        len(bodies),
        skipped,
        extra={"fields": {"source": source_uri, **summary}},
    )
    return summary


def message_body(source_uri: str, info: ObjectInfo, retry_quarantined: bool = False) -> str:
    body: dict[str, Any] = {
        "source": source_uri,
        "key": info.key,
        "etag": info.etag,
        "size": info.size,
    }
    if retry_quarantined:
        body["retry_quarantined"] = True
    return json.dumps(body, sort_keys=True)


def _send_batch(sqs: Any, queue_url: str, bodies: Sequence[str]) -> None:
    pending = {str(index): body for index, body in enumerate(bodies)}
    for _ in range(SEND_ATTEMPTS):
        response = sqs.send_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": entry_id, "MessageBody": body} for entry_id, body in pending.items()],
        )
        failed = response.get("Failed", [])
        pending = {entry["Id"]: pending[entry["Id"]] for entry in failed}
        if not pending:
            return
    codes = sorted({entry.get("Code", "?") for entry in failed})
    # the run fails loudly; what was queued is harmless to queue again next run
    raise RuntimeError(
        f"SQS refused {len(pending)} message(s) after {SEND_ATTEMPTS} tries: {codes}"
    )


# ------------------------------------------------------------------------------- worker


def worker_handler(event: Mapping[str, Any], context: Any) -> dict[str, list[dict[str, str]]]:
    """SQS-triggered: ingest the object of each message; report the messages that failed."""
    _configure_logging_in_lambda()
    config = HandlerConfig.from_env(os.environ, need_queue=False)
    bound_arrow_memory()
    # reused by the next invocations of a warm container: no AssumeRole per message
    source, lake = worker_storages(config.source_access(), config.lake)
    aliases = config.aliases()
    failures: list[dict[str, str]] = []
    for record in event.get("Records", []):
        try:
            message = json.loads(record["body"])
            ingest_message(
                source, lake, message, config.source, aliases, config.limits, config.threads
            )
        except Exception:
            log.exception(
                "message failed; SQS will deliver it again",
                extra={"fields": {"message_id": record.get("messageId")}},
            )
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}


def ingest_message(
    source: Storage,
    lake: Storage,
    message: Mapping[str, Any],
    source_uri: str,
    aliases: FeedMapping | Mapping[str, str] | None = None,
    limits: RecordLimits | None = None,
    threads: int = 1,
) -> str:
    """Ingest the object one planner message names; returns what happened (for logs/tests):
    `ingested`, `quarantined`, `failed` (refused once, retried when queued again),
    `already-ingested`, `gone`, `not-visible` or `changed`."""
    if _normalised(str(message.get("source", ""))) != _normalised(source_uri):
        # never read where a message points, only under the configured source
        raise ValueError(
            f"message for source {message.get('source')!r}, but this worker reads {source_uri!r}"
        )
    key = str(message["key"])
    uri = source.uri(key)
    fields: dict[str, Any] = {"file": uri, "planned_etag": message.get("etag")}
    try:
        current = source.info(key)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in ("403", "AccessDenied"):
            raise
        log.warning(
            "HEAD of the object was refused (403): it was deleted (the role may not list the "
            "bucket, so S3 says 403 rather than 404) or this role may no longer read it; "
            "nothing to ingest now, and if it still exists the next planner run queues it "
            "again (refused again, it is quarantined)",
            extra={"fields": fields},
        )
        _count_refusal(source, lake, key, str(message.get("etag", "")), uri)
        return "not-visible"
    if current is None:
        log.warning("object no longer exists; nothing to ingest", extra={"fields": fields})
        return "gone"
    if current.etag != message.get("etag"):
        log.info(
            "object changed since planning; ingesting its current version",
            extra={"fields": {**fields, "etag": current.etag}},
        )
    retry_quarantined = message.get("retry_quarantined") is True
    if IngestLog(lake).version_is_settled(source_id_for(uri), current.etag, retry_quarantined):
        log.info("already ingested", extra={"fields": {**fields, "etag": current.etag}})
        return "already-ingested"
    try:
        result = ingest_object(
            source,
            key,
            current.etag,
            lake,
            size=current.size,
            aliases=aliases,
            limits=limits,
            threads=threads,
        )
    except ObjectChanged as exc:
        log.warning(
            "%s; the next planner run queues the new version", exc, extra={"fields": fields}
        )
        return "changed"
    log_result(result, lake)
    return "ingested" if result.status == "ok" else result.status


def _count_refusal(source: Storage, lake: Storage, key: str, etag: str, uri: str) -> None:
    """A refused HEAD counts against the planned version, like a refused GET."""
    result = IngestResult.unfinished(source, key, etag, None, STATUS_FAILED, "")
    commit = VersionCommit(lake, result.source_id, etag)
    outcome = refused(
        result,
        commit,
        time.monotonic(),
        f"{uri}: S3 refused the HEAD request (403)",
        "give the worker's role (or the source role) s3:GetObject on the object",
    )
    if outcome.status != STATUS_FAILED:
        log_result(outcome, lake)


def _normalised(uri: str) -> str:
    return uri.rstrip("/")


def _configure_logging_in_lambda() -> None:
    # Lambda's runtime installs its own text handler; JSON lines are what CloudWatch Logs
    # Insights queries. Elsewhere (tests, a local call) the caller's logging setup stands.
    if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        configure_logging(json_lines=True)
