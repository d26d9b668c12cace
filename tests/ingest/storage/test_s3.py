"""S3Storage against moto_server over HTTP, directly and through the fault-injecting proxy.

Expected values (contents, ETags, listings) come from a separate plain boto3 client talking
to moto, or from hashlib, never from S3Storage itself.
"""

from __future__ import annotations

import concurrent.futures
import gzip
import hashlib
import json
import os
from collections.abc import Iterator
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from botocore.exceptions import ClientError

from ingest.errors import UserError
from ingest.storage import ObjectInfo
from ingest.storage.s3 import MIN_PART_SIZE, S3ReadError, S3Storage, parse_s3_uri
from tests.support.faulty_proxy import FaultyProxy

BUCKET = "b2p-test-bucket"
PREFIX = "lake"
MIB = 1024 * 1024


@pytest.fixture
def direct(aws: str) -> Any:
    """A plain client straight to moto: the independent view of what is really stored."""
    client = boto3.client("s3", endpoint_url=aws)
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture
def storage(direct: Any) -> S3Storage:
    return S3Storage.from_uri(f"s3://{BUCKET}/{PREFIX}", part_size=MIN_PART_SIZE, resume_delay=0)


def stored(direct: Any, key: str) -> bytes:
    return bytes(direct.get_object(Bucket=BUCKET, Key=f"{PREFIX}/{key}")["Body"].read())


def is_stored(direct: Any, key: str) -> bool:
    try:
        direct.head_object(Bucket=BUCKET, Key=f"{PREFIX}/{key}")
    except ClientError as error:
        assert error.response["Error"]["Code"] == "404"
        return False
    return True


def open_uploads(direct: Any) -> list[dict[str, Any]]:
    return list(direct.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []))


def count_calls(client: Any, operation: str) -> list[int]:
    """A one-element list counting the calls `client` makes of `operation`."""
    counter = [0]

    def count(**_: Any) -> None:
        counter[0] += 1

    client.meta.events.register(f"before-call.s3.{operation}", count)
    return counter


def multipart_etag(data: bytes, part_size: int) -> str:
    parts = [data[i : i + part_size] for i in range(0, len(data), part_size)]
    digests = b"".join(hashlib.md5(part).digest() for part in parts)
    return f"{hashlib.md5(digests).hexdigest()}-{len(parts)}"


# --- addressing -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("s3://bkt", ("bkt", "")),
        ("s3://bkt/", ("bkt", "")),
        ("s3://bkt/a/b", ("bkt", "a/b/")),
        ("s3://bkt/a/b/", ("bkt", "a/b/")),
    ],
)
def test_parse_s3_uri(uri: str, expected: tuple[str, str]) -> None:
    assert parse_s3_uri(uri) == expected


@pytest.mark.parametrize("uri", ["s3://", "s3:///prefix", "/local/folder"])
def test_parse_s3_uri_rejects_what_is_not_a_bucket(uri: str) -> None:
    with pytest.raises(UserError):
        parse_s3_uri(uri)


def test_keys_are_relative_to_the_prefix(storage: S3Storage, direct: Any) -> None:
    storage.write_bytes("a/b.txt", b"hello")

    assert stored(direct, "a/b.txt") == b"hello"
    assert storage.uri("a/b.txt") == f"s3://{BUCKET}/{PREFIX}/a/b.txt"
    assert storage.root == f"s3://{BUCKET}/{PREFIX}"
    assert storage.read_bytes("a/b.txt") == b"hello"


def test_bucket_root_without_prefix(direct: Any) -> None:
    storage = S3Storage.from_uri(f"s3://{BUCKET}")
    storage.write_bytes("top.txt", b"x")

    assert direct.get_object(Bucket=BUCKET, Key="top.txt")["Body"].read() == b"x"
    assert [info.key for info in storage.list()] == ["top.txt"]


# --- listing --------------------------------------------------------------------------------


def test_list_pages_past_1000_objects(storage: S3Storage, direct: Any) -> None:
    expected = {f"many/{i:04d}.csv.gz" for i in range(1005)}
    decoys = [f"{PREFIX}/many_more/x.csv", f"{PREFIX}/other/y.csv", "elsewhere/many/z.csv"]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        keys = [f"{PREFIX}/{key}" for key in expected] + decoys
        list(pool.map(lambda key: direct.put_object(Bucket=BUCKET, Key=key, Body=b"ab"), keys))
    pages = count_calls(storage.client, "ListObjectsV2")

    listed = list(storage.list("many"))

    assert {info.key for info in listed} == expected
    assert len(listed) == 1005
    assert {info.size for info in listed} == {2}
    assert pages[0] == 2  # S3 pages hold at most 1000 keys


def test_list_gives_sizes_and_unquoted_etags(storage: S3Storage, direct: Any) -> None:
    direct.put_object(Bucket=BUCKET, Key=f"{PREFIX}/d/one.csv", Body=b"one")
    direct.put_object(Bucket=BUCKET, Key=f"{PREFIX}/d/sub/two.csv", Body=b"second")
    direct.put_object(Bucket=BUCKET, Key=f"{PREFIX}/d/folder/", Body=b"")  # console marker

    assert list(storage.list("d")) == [
        ObjectInfo("d/one.csv", 3, hashlib.md5(b"one").hexdigest()),
        ObjectInfo("d/sub/two.csv", 6, hashlib.md5(b"second").hexdigest()),
    ]
    assert [info.key for info in storage.list("d/one.csv")] == ["d/one.csv"]
    assert list(storage.list("missing")) == []


def test_a_folder_prefix_is_listed_with_its_slash(storage: S3Storage, direct: Any) -> None:
    """A role limited to `s3:prefix` `d/*` may list `d/` but not `d`: a folder listing asks S3
    for exactly `<prefix>/d/`."""
    direct.put_object(Bucket=BUCKET, Key=f"{PREFIX}/d/one.csv", Body=b"one")
    direct.put_object(Bucket=BUCKET, Key=f"{PREFIX}/d", Body=b"a file called d")
    asked: list[str] = []
    storage.client.meta.events.register(
        "provide-client-params.s3.ListObjectsV2",
        lambda params, **_: asked.append(params["Prefix"]),
    )

    assert [info.key for info in storage.list("d/")] == ["d/one.csv"]
    assert asked == [f"{PREFIX}/d/"]


# --- reading --------------------------------------------------------------------------------


def test_streamed_read_in_chunks(storage: S3Storage, direct: Any) -> None:
    data = os.urandom(6 * MIB + 7)
    direct.put_object(Bucket=BUCKET, Key=f"{PREFIX}/big.bin", Body=data)

    chunks = []
    with storage.open_read("big.bin") as handle:
        chunks.append(handle.read(10))
        # only a bounded buffer has come off the wire, not the object
        assert handle.raw.tell() <= 1 * MIB  # type: ignore[attr-defined]
        while chunk := handle.read(64 * 1024):
            chunks.append(chunk)

    assert max(len(chunk) for chunk in chunks) == 64 * 1024
    assert b"".join(chunks) == data


def test_gzip_reads_through_the_stream(storage: S3Storage, direct: Any) -> None:
    lines = [f"row {i},{i * i}\n".encode() for i in range(50_000)]
    direct.put_object(Bucket=BUCKET, Key=f"{PREFIX}/f.csv.gz", Body=gzip.compress(b"".join(lines)))

    with storage.open_read("f.csv.gz") as raw, gzip.GzipFile(fileobj=raw) as text:
        assert list(text) == lines


def test_read_missing_object_is_file_not_found(storage: S3Storage) -> None:
    with pytest.raises(FileNotFoundError):
        storage.read_bytes("nope.bin")
    assert not storage.exists("nope.bin")


# --- writing --------------------------------------------------------------------------------


def test_small_write_is_one_put(storage: S3Storage, direct: Any) -> None:
    puts = count_calls(storage.client, "PutObject")
    uploads = count_calls(storage.client, "CreateMultipartUpload")

    with storage.open_write("small.json") as handle:
        handle.write(b'{"a": ')
        handle.write(memoryview(b"1}"))

    assert (puts[0], uploads[0]) == (1, 0)
    assert stored(direct, "small.json") == b'{"a": 1}'
    assert storage.info("small.json") == ObjectInfo(
        "small.json", 8, hashlib.md5(b'{"a": 1}').hexdigest()
    )


def test_large_write_is_multipart_and_invisible_until_the_block_ends(
    storage: S3Storage, direct: Any
) -> None:
    data = os.urandom(2 * MIN_PART_SIZE + 123_457)
    puts = count_calls(storage.client, "PutObject")
    parts = count_calls(storage.client, "UploadPart")

    with storage.open_write("big/out.bin") as handle:
        for start in range(0, len(data), 1_000_000):
            handle.write(data[start : start + 1_000_000])
        assert parts[0] == 2  # streamed part by part while writing
        assert not is_stored(direct, "big/out.bin")
        assert len(open_uploads(direct)) == 1

    assert (puts[0], parts[0]) == (0, 3)
    assert stored(direct, "big/out.bin") == data
    assert direct.head_object(Bucket=BUCKET, Key=f"{PREFIX}/big/out.bin")["ETag"].strip(
        '"'
    ) == multipart_etag(data, MIN_PART_SIZE)
    assert open_uploads(direct) == []


def test_write_of_exactly_one_part_completes(storage: S3Storage, direct: Any) -> None:
    data = os.urandom(MIN_PART_SIZE)
    storage.write_bytes("exact.bin", data)

    assert stored(direct, "exact.bin") == data
    assert open_uploads(direct) == []


@pytest.mark.parametrize("size", [1000, 2 * MIN_PART_SIZE + 1], ids=["put", "multipart"])
def test_failed_write_leaves_no_object_and_no_upload(
    storage: S3Storage, direct: Any, size: int
) -> None:
    with pytest.raises(RuntimeError, match="boom"), storage.open_write("half.bin") as handle:
        handle.write(os.urandom(size))
        raise RuntimeError("boom")

    assert not is_stored(direct, "half.bin")
    assert open_uploads(direct) == []


def test_overwrite_replaces_and_failed_overwrite_keeps_previous(
    storage: S3Storage, direct: Any
) -> None:
    storage.write_bytes("v.txt", b"version one")
    with pytest.raises(ValueError), storage.open_write("v.txt") as handle:
        handle.write(b"version two, half")
        raise ValueError("stop")
    assert stored(direct, "v.txt") == b"version one"

    storage.write_bytes("v.txt", b"version three")
    assert stored(direct, "v.txt") == b"version three"
    assert [info.etag for info in storage.list("v.txt")] == [
        hashlib.md5(b"version three").hexdigest()
    ]


def test_parquet_written_through_open_write(storage: S3Storage, direct: Any) -> None:
    table = pa.table({"id": pa.array(range(1000), pa.int64()), "s": [str(i) for i in range(1000)]})
    with storage.open_write("t.parquet") as handle:
        pq.write_table(table, handle, compression="zstd")

    assert pq.read_table(pa.BufferReader(stored(direct, "t.parquet"))).equals(table)


def test_delete_exists_and_delete_tree(storage: S3Storage, direct: Any) -> None:
    for key in ["p/a", "p/b/c", "p2/d", "q"]:
        direct.put_object(Bucket=BUCKET, Key=f"{PREFIX}/{key}", Body=b"1")

    assert storage.exists("q")
    storage.delete("q")
    storage.delete("q")  # deleting what is gone is not an error
    assert not storage.exists("q")

    storage.delete_tree("p")
    remaining = direct.list_objects_v2(Bucket=BUCKET)["Contents"]
    assert [item["Key"] for item in remaining] == [f"{PREFIX}/p2/d"]


# --- broken connections ---------------------------------------------------------------------


@pytest.fixture
def proxied(direct: Any, aws: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Start a FaultyProxy with the given options and point AWS_ENDPOINT_URL at it."""
    proxies: list[FaultyProxy] = []

    def start(**options: Any) -> FaultyProxy:
        proxy = FaultyProxy(aws, **options).start()
        proxies.append(proxy)
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
        return proxy

    yield start
    for proxy in proxies:
        proxy.stop()


def test_read_resumes_where_the_body_broke(proxied: Any, direct: Any) -> None:
    data = os.urandom(3 * MIB)
    direct.put_object(Bucket=BUCKET, Key=f"{PREFIX}/cut.bin", Body=data)
    proxy = proxied(schedule=["cut", "cut"])
    storage = S3Storage.from_uri(f"s3://{BUCKET}/{PREFIX}", resume_delay=0)

    with storage.open_read("cut.bin") as handle:
        received = b"".join(iter(lambda: handle.read(100_000), b""))
        resumes = handle.raw.resumes  # type: ignore[attr-defined]

    assert received == data
    assert resumes == 2
    assert [(method, fault) for method, _, fault in proxy.log] == [
        ("GET", "cut"),
        ("GET", "cut"),
        ("GET", None),
    ]


def test_read_gives_up_after_bounded_resumes(proxied: Any, direct: Any) -> None:
    direct.put_object(Bucket=BUCKET, Key=f"{PREFIX}/cut.bin", Body=os.urandom(MIB))
    proxy = proxied(fault_rate=1.0, faults=["cut"])
    storage = S3Storage.from_uri(f"s3://{BUCKET}/{PREFIX}", max_read_resumes=2, resume_delay=0)

    with pytest.raises(S3ReadError, match="broke 3 times"):
        storage.read_bytes("cut.bin")
    assert proxy.requests == 3


def test_resumed_read_refuses_a_replaced_object(proxied: Any, direct: Any) -> None:
    direct.put_object(Bucket=BUCKET, Key=f"{PREFIX}/v.bin", Body=b"a" * MIB)
    proxied(schedule=["cut"])
    storage = S3Storage.from_uri(f"s3://{BUCKET}/{PREFIX}", resume_delay=0)

    with storage.open_read("v.bin") as handle:
        assert handle.read(1000) == b"a" * 1000
        direct.put_object(Bucket=BUCKET, Key=f"{PREFIX}/v.bin", Body=b"b" * MIB)
        with pytest.raises(S3ReadError, match="replaced"):
            handle.read()


@pytest.mark.parametrize("fault", ["drop_after", "cut"])
def test_completion_whose_answer_was_lost_still_succeeds(
    proxied: Any, direct: Any, fault: str
) -> None:
    # create, part 1, part 2, then the completion: applied by moto, its answer lost, and
    # botocore's retry of it must succeed too
    proxy = proxied(schedule=[None, None, None, fault])
    storage = S3Storage.from_uri(f"s3://{BUCKET}/{PREFIX}", part_size=MIN_PART_SIZE)
    data = os.urandom(MIN_PART_SIZE + 1000)

    storage.write_bytes("done.bin", data)

    assert [(method, injected) for method, _, injected in proxy.log] == [
        ("POST", None),
        ("PUT", None),
        ("PUT", None),
        ("POST", fault),
        ("POST", None),
    ]
    assert stored(direct, "done.bin") == data
    assert open_uploads(direct) == []


def test_storage_survives_a_quarter_of_requests_failing(proxied: Any, direct: Any) -> None:
    proxy = proxied(fault_rate=0.25, seed=4)
    storage = S3Storage.from_uri(f"s3://{BUCKET}/{PREFIX}", part_size=MIN_PART_SIZE, resume_delay=0)
    small = {
        f"run/{i:02d}.json": json.dumps({"i": i, "pad": "x" * i * 500}).encode() for i in range(15)
    }
    large = {f"run/big{i}.bin": os.urandom(MIN_PART_SIZE + 200_000 * (i + 1)) for i in range(2)}
    written = small | large

    for key, data in written.items():
        if key in large:
            with storage.open_write(key) as handle:
                for start in range(0, len(data), MIB):
                    handle.write(data[start : start + MIB])
        else:
            storage.write_bytes(key, data)
    listed = {info.key: info.size for info in storage.list("run")}
    read_back = {key: storage.read_bytes(key) for key in written}
    storage.delete("run/00.json")

    assert listed == {key: len(data) for key, data in written.items()}
    assert read_back == written
    in_moto = {
        item["Key"][len(PREFIX) + 1 :]
        for item in direct.list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/run/")["Contents"]
    }
    assert in_moto == set(written) - {"run/00.json"}
    assert all(stored(direct, key) == written[key] for key in in_moto)
    # the run really went through faults of every kind
    assert sum(proxy.injected.values()) >= 0.15 * proxy.requests
    assert set(proxy.injected) == {"500", "503", "drop", "drop_after", "cut"}


# --- cross-account source -------------------------------------------------------------------


def signing_access_keys(client: Any) -> list[str]:
    """The access key id in the Authorization header of every request the client sends."""
    keys: list[str] = []

    def capture(request: Any, **_: Any) -> None:
        authorization = request.headers["Authorization"]
        if isinstance(authorization, bytes):
            authorization = authorization.decode()
        keys.append(authorization.split("Credential=")[1].split("/")[0])

    client.meta.events.register("before-send.s3", capture)
    return keys


def test_source_reads_with_the_assumed_role_and_lake_with_the_caller(direct: Any) -> None:
    iam = boto3.client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    role_arn = iam.create_role(
        RoleName="freewheel-read", AssumeRolePolicyDocument=json.dumps(trust)
    )["Role"]["Arn"]
    direct.put_object(Bucket=BUCKET, Key="src/x.csv.gz", Body=b"x")

    source = S3Storage.from_uri(f"s3://{BUCKET}/src", role_arn=role_arn, external_id="fw-ext-id")
    lake = S3Storage.from_uri(f"s3://{BUCKET}/{PREFIX}")
    source_keys = signing_access_keys(source.client)
    lake_keys = signing_access_keys(lake.client)
    assert [info.key for info in source.list()] == ["x.csv.gz"]
    lake.write_bytes("y", b"y")

    assert set(lake_keys) == {"testing"}  # the caller's key, from the aws fixture
    assert len(set(source_keys)) == 1
    source_key = source_keys[0]
    assert source_key != "testing"
    # moto maps the temporary key back to whom it was issued to
    sts = boto3.client(
        "sts", aws_access_key_id=source_key, aws_secret_access_key="-", aws_session_token="-"
    )
    assert sts.get_caller_identity()["Arn"] == (
        "arn:aws:sts::123456789012:assumed-role/freewheel-read/b2p-ingest"
    )
