"""Where ingest puts things in the lake, the writers that put them there, and the protocol
that keeps the lake exact when runs are killed, overlap or meet a re-delivered file.

    v4_events/event_date=YYYY-MM-DD/event_hour=H/<source_id>.parquet   one file per source × hour
    _ingest/intent/<source_id>/<etag>-<attempt>.json  outputs an attempt is about to make visible
    _ingest/log/<source_id>/<etag>.json          one record per ingested version, written last
    _ingest/rejects/<source_id>.jsonl             rejected rows of the source's current version
    _ingest/quarantine/<source_id>.json           why the source's latest version was quarantined
    _ingest/failures/<source_id>.json             a version refused (access denied) on its last try

`<source_id>` is a readable slug of the file name plus 12 hex digits of the SHA-256 of the
source URI, so it is stable across runs, unique per source object, and never starts with `.` or
`_` (Hive, Athena and DuckDB globs skip such files).

The log key carries source id and ETag, so "is this version ingested?" is answered by one LIST
of `_ingest/log/` — no object reads, however many years of files.

Rejects are JSON lines, one per rejected record: `source_file`, `line` (physical start line,
header = 1), `lines` (how many physical lines the record takes), `column` (contract name, null
for a malformed record), `reason`, `message` (what a person reads) and `values` (the raw fields
in file order); a line too long to keep has `excerpt` (its start) instead of values.

A failure record counts the attempts in a row at which a version was refused (access denied, a
worker died reading it): such a failure may be fixed by someone else, so it is retried once, and
quarantined when it happens again (`ingest.logs.attempt`). A successful or quarantined attempt
removes it.

Crash and concurrency protocol (one attempt = one source object version). `VersionCommit` below
carries it out, for the CLI, its worker processes and the Lambda worker alike:

1. Read the whole object (If-Match on the listed ETag) and write every partition and the
   rejects file through `Storage.open_write`: a local temp file or an S3 multipart upload,
   invisible until committed. A failure or a kill here leaves nothing visible.
2. Write the INTENT record `_ingest/intent/<source_id>/<etag>-<attempt>.json` listing the
   output keys (partitions + rejects) this attempt is about to commit.
3. Commit the outputs one by one (rename / PUT / CompleteMultipartUpload). Output names are
   deterministic (`<source_id>` per hour, `<source_id>.jsonl`), so a commit REPLACES what an
   earlier attempt or version wrote under that name — never appends, never duplicates.
4. Clean up: for every other record of this source id — log records of other ETags and intent
   records of any other attempt — delete the outputs it lists that this attempt did not just
   write, then delete the record itself.
5. Write the LOG record `_ingest/log/<source_id>/<etag>.json` (status, row counts, outputs).
6. Delete this attempt's own intent record.

Invariant: every visible output of a source id is listed by a log or intent record of that
source id that still exists. Step 2 precedes step 3; step 4 deletes a record only after its
outputs are deleted or replaced by ours (which our own intent covers); step 6 runs after the
log record that lists the same outputs. So whatever moment a run is SIGKILLed at:

- before step 5, the version has no log record, so the next run ingests it again and its step
  4 finds — through the intent and log records — every output any earlier attempt or version
  left, including partitions the new version no longer touches (a re-delivered file whose rows
  moved to other hours); stale ones are deleted, the rest are overwritten. A kill during step
  3 leaves a mix of new and old partitions visible until that next run (S3 has no multi-object
  transaction); it never leaves a partial file and never two copies of a row.
- after step 5, the version is done; a leftover intent (kill before step 6) lists exactly the
  logged outputs and is removed by the source's next re-delivery.

Scanning `v4_events/*/*/<source_id>.parquet` instead of keeping intent records would list the
whole lake per file on S3 (no suffix filter), so the records are the index: cleanup costs two
LISTs (`_ingest/log/<source_id>/`, `_ingest/intent/<source_id>/`) per ingested file.

Two runs ingesting the same version at once write byte-for-byte the same rows under the same
names, so whichever commit lands last wins and the row set is the same; neither deletes the
other's outputs as stale, because both list the same keys and step 4 only deletes keys the
deleting attempt did not write. (Runs racing on two DIFFERENT versions of one object end with
whichever finishes last; if that is the older version, its log record lacks the newer ETag and
the next run ingests the newer one, converging on it.) A record the other run deletes while this
one lists or reads it (step 4, step 6) is part of the protocol, not an error: listings are
snapshots that skip what vanished, and a record gone before it is read lists nothing to clean.

Leftovers of a kill: a local temp file (`.tmp-*`, ignored by every reader) is removed by
`Storage.sweep_temp_files` at the start of the next CLI run — only when no live writer holds its
lock, so a concurrent run's temp files are safe. An S3 multipart upload is invisible and is
removed by the lake bucket's AbortIncompleteMultipartUpload lifecycle rule.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ingest.logs.writers import PartitionedWriter, RejectsWriter
from ingest.storage import Storage

EVENTS_PREFIX = "v4_events"
LOG_PREFIX = "_ingest/log/"
INTENT_PREFIX = "_ingest/intent/"
REJECTS_PREFIX = "_ingest/rejects/"
QUARANTINE_PREFIX = "_ingest/quarantine/"
FAILURE_PREFIX = "_ingest/failures/"
PROBE_KEY = "_ingest/write-check"  # written and deleted by the check before a run

_SLUG_CHARS = 60
_HASH_CHARS = 12


def source_id_for(source_uri: str) -> str:
    """`s3://b/2024/06/01/Hourly_Log.12.csv.gz` → `hourly-log-12-<12 hex of sha256(uri)>`."""
    name = source_uri.rstrip("/").rsplit("/", 1)[-1]
    stem = re.sub(r"(\.csv)?(\.gz)?$", "", name, flags=re.IGNORECASE)
    slug = re.sub(r"[^a-z0-9]+", "-", stem.lower()).strip("-")[:_SLUG_CHARS].strip("-")
    digest = hashlib.sha256(source_uri.encode("utf-8")).hexdigest()[:_HASH_CHARS]
    return f"{slug or 'file'}-{digest}"


def etag_token(etag: str) -> str:
    """The ETag as a safe key segment (S3 ETags are hex, maybe `-N`; local ones `size-mtime`)."""
    return re.sub(r"[^A-Za-z0-9.-]", "_", etag.strip('"')) or "none"


def partition_key(hour_start_ms: int, source_id: str) -> str:
    start = dt.datetime.fromtimestamp(hour_start_ms / 1000, tz=dt.UTC)
    return (
        f"{EVENTS_PREFIX}/event_date={start:%Y-%m-%d}/event_hour={start.hour}/{source_id}.parquet"
    )


def log_key(source_id: str, etag: str) -> str:
    return f"{LOG_PREFIX}{source_id}/{etag_token(etag)}.json"


def intent_key(source_id: str, etag: str, attempt: str) -> str:
    return f"{INTENT_PREFIX}{source_id}/{etag_token(etag)}-{attempt}.json"


def new_attempt_id() -> str:
    return uuid.uuid4().hex[:16]


def rejects_key(source_id: str) -> str:
    return f"{REJECTS_PREFIX}{source_id}.jsonl"


def quarantine_key(source_id: str) -> str:
    return f"{QUARANTINE_PREFIX}{source_id}.json"


def failure_key(source_id: str) -> str:
    return f"{FAILURE_PREFIX}{source_id}.json"


def listed_outputs(record: dict[str, Any]) -> list[str]:
    """The lake keys a log record (`output_keys`, `rejects_key`) or intent (`outputs`) lists."""
    if "outputs" in record:
        return list(record["outputs"])
    outputs = list(record.get("output_keys") or [])
    if record.get("rejects_key"):
        outputs.append(record["rejects_key"])
    return outputs


def _json_bytes(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, indent=2, sort_keys=True, default=str) + "\n").encode("utf-8")


class IngestLog:
    """The ingest log of a lake: which source versions are done, and what they produced."""

    def __init__(self, lake: Storage) -> None:
        self._lake = lake

    def logged_versions(self) -> set[tuple[str, str]]:
        """(source_id, etag token) of every logged version, from one listing."""
        versions: set[tuple[str, str]] = set()
        for info in self._lake.list(LOG_PREFIX):
            parts = info.key[len(LOG_PREFIX) :].split("/")
            if len(parts) == 2 and parts[1].endswith(".json"):
                versions.add((parts[0], parts[1][: -len(".json")]))
        return versions

    def is_logged(self, source_id: str, etag: str) -> bool:
        """Whether this version of one source is in the log (one LIST of its folder)."""
        wanted = log_key(source_id, etag)
        return any(info.key == wanted for info in self._lake.list(f"{LOG_PREFIX}{source_id}/"))

    def version_is_settled(self, source_id: str, etag: str, retry_quarantined: bool) -> bool:
        """`is_settled` for one version, as a worker asks it just before reading (one LIST, and
        one HEAD when retrying quarantined versions)."""
        quarantined = retry_quarantined and self._lake.exists(quarantine_key(source_id))
        return is_settled(self.is_logged(source_id, etag), quarantined, retry_quarantined)

    def quarantined_sources(self) -> set[str]:
        return {
            info.key[len(QUARANTINE_PREFIX) : -len(".json")]
            for info in self._lake.list(QUARANTINE_PREFIX)
            if info.key.endswith(".json")
        }

    def records_for(self, source_id: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """(key, record) of every log and intent record of one source: together they list
        every output of the source that may be visible (see the protocol above)."""
        for prefix in (f"{LOG_PREFIX}{source_id}/", f"{INTENT_PREFIX}{source_id}/"):
            for info in self._lake.list(prefix):
                try:
                    data = self._lake.read_bytes(info.key)
                except FileNotFoundError:
                    continue  # removed by a concurrent attempt after the listing
                yield info.key, json.loads(data)

    def write(self, record: dict[str, Any]) -> str:
        key = log_key(record["source_id"], record["etag"])
        self._lake.write_bytes(key, _json_bytes(record))
        return key

    def remove_settled_intents(self, logged: set[tuple[str, str]]) -> int:
        """Delete intents left by a kill between step 5 and step 6 of the protocol: those of a
        logged version whose log record lists every output the intent does. Returns how many."""
        removed = 0
        for info in self._lake.list(INTENT_PREFIX):
            source_id, _, name = info.key[len(INTENT_PREFIX) :].partition("/")
            token = name.rsplit("-", 1)[0]
            if (source_id, token) not in logged:
                continue  # an attempt in progress, or killed before its log record: needed
            try:
                intent = json.loads(self._lake.read_bytes(info.key))
                record = json.loads(self._lake.read_bytes(f"{LOG_PREFIX}{source_id}/{token}.json"))
            except FileNotFoundError:
                continue  # changed meanwhile; leave it to the next run
            if set(listed_outputs(intent)) <= set(listed_outputs(record)):
                self._lake.delete(info.key)
                removed += 1
        return removed

    def write_intent(self, source_id: str, etag: str, attempt: str, outputs: list[str]) -> str:
        key = intent_key(source_id, etag, attempt)
        record = {"source_id": source_id, "etag": etag, "attempt": attempt, "outputs": outputs}
        self._lake.write_bytes(key, _json_bytes(record))
        return key


def write_quarantine_record(lake: Storage, source_id: str, record: dict[str, Any]) -> str:
    key = quarantine_key(source_id)
    lake.write_bytes(key, _json_bytes(record))
    return key


def is_settled(logged: bool, quarantined: bool, retry_quarantined: bool) -> bool:
    """Whether a source version needs no ingest: it is logged (done, or quarantined), unless it
    was quarantined and the user asked to retry those (`--retry-quarantined`)."""
    return logged and not (retry_quarantined and quarantined)


@dataclass
class StagedOutputs:
    """The writers of one attempt; nothing they write is visible before the commit."""

    partitions: PartitionedWriter
    rejects: RejectsWriter

    @property
    def keys(self) -> list[str]:
        """Every lake key this attempt is about to make visible (what the intent lists)."""
        return self.partitions.keys + ([self.rejects.key] if self.rejects.key else [])


class VersionCommit:
    """One attempt at putting one source version into the lake: the protocol above, in order.

        commit = VersionCommit(lake, source_id, etag)
        with commit.staged() as outputs:   # steps 1-3: write, list in the intent, commit
            ...write rows and rejects...
        commit.complete(record)            # steps 4-6: clean up, log record, drop the intent

    When the `staged()` block raises, nothing of the attempt is visible; `quarantine(record,
    reason)` then records why, and leaves the outputs of an earlier good version in place.
    """

    def __init__(self, lake: Storage, source_id: str, etag: str) -> None:
        self.lake = lake
        self.source_id = source_id
        self.etag = etag
        self.attempt = new_attempt_id()
        self._log = IngestLog(lake)
        self._intent: str | None = None

    @contextlib.contextmanager
    def staged(self) -> Iterator[StagedOutputs]:
        """Steps 1-3: the writers; when the block ends normally, the intent record lists their
        outputs (2) and then they are committed (3)."""
        with contextlib.ExitStack() as stack:
            outputs = StagedOutputs(
                PartitionedWriter(self.lake, self._partition_key, stack),
                RejectsWriter(self.lake, rejects_key(self.source_id), stack),
            )
            yield outputs
            outputs.partitions.finish()
            # before anything becomes visible, so a kill during the commit leaves a record of it
            self._intent = self._log.write_intent(
                self.source_id, self.etag, self.attempt, outputs.keys
            )
        # the stack closed normally: every partition and the rejects file are now visible

    def complete(self, record: dict[str, Any]) -> None:
        """Steps 4-6, once `staged()` has committed. `record` lists the same outputs."""
        if self._intent is None:
            raise RuntimeError("VersionCommit.complete() before a committed staged() block")
        self._remove_outputs_of_other_records(set(listed_outputs(record)))
        self.lake.delete(quarantine_key(self.source_id))
        self.lake.delete(failure_key(self.source_id))
        self._log.write(record)
        self.lake.delete(self._intent)  # the log record now lists the same outputs

    def quarantine(self, record: dict[str, Any], reason: dict[str, Any]) -> None:
        """The version cannot be read: record why, and log it so it is not retried until it
        changes (a quarantined re-delivery keeps the rows of the earlier good version)."""
        write_quarantine_record(self.lake, self.source_id, reason)
        self.lake.delete(failure_key(self.source_id))
        self._log.write(record)

    def count_failure(self, reason: str, at: str) -> dict[str, Any]:
        """Record that this attempt failed in a way someone may fix (access denied); returns
        the failure record, whose `attempts` counts the attempts in a row that failed so."""
        key = failure_key(self.source_id)
        try:
            previous = json.loads(self.lake.read_bytes(key))
        except FileNotFoundError:
            previous = {}
        same_version = previous.get("etag") == self.etag
        record = {
            "source_id": self.source_id,
            "etag": self.etag,
            "reason": reason,
            "attempts": previous.get("attempts", 0) + 1 if same_version else 1,
            "first_failed_at": previous.get("first_failed_at", at) if same_version else at,
            "last_failed_at": at,
        }
        self.lake.write_bytes(key, _json_bytes(record))
        return record

    def _partition_key(self, hour_start_ms: int) -> str:
        return partition_key(hour_start_ms, self.source_id)

    def _remove_outputs_of_other_records(self, keep: set[str]) -> None:
        """Step 4: what other attempts and versions left that this one did not write, then
        their records."""
        own = (log_key(self.source_id, self.etag), self._intent)
        for key, record in list(self._log.records_for(self.source_id)):
            if key in own:
                continue  # same version, same outputs: nothing of it is stale
            for stale in listed_outputs(record):
                if stale not in keep:
                    self.lake.delete(stale)
            self.lake.delete(key)  # safe before our log record: our intent covers what we wrote
