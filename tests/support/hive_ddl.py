"""Athena's DDL (Hive's dialect), turned into the Glue Data Catalog calls Athena makes for it.

Athena runs DDL statements (CREATE EXTERNAL TABLE, DROP TABLE, ALTER TABLE …) against the Glue
catalog, not through its query engine; the AWS stand-in does the same with boto3, signed with the
caller's access key, so each call is recorded and authorized as the caller's. Supported, as the
project and dbt-athena send them:

    CREATE EXTERNAL TABLE [IF NOT EXISTS] t (col type, …) [PARTITIONED BY (col type, …)]
        [ROW FORMAT SERDE '…' [WITH SERDEPROPERTIES (…)]] [STORED AS fmt] [LOCATION '…']
        [TBLPROPERTIES ('k'='v', …)]
    DROP TABLE [IF EXISTS] t
    ALTER TABLE t SET TBLPROPERTIES ('k'='v', …)
    ALTER TABLE t ADD [IF NOT EXISTS] PARTITION (k='v', …) [LOCATION '…'] [PARTITION …]
    ALTER TABLE t DROP [IF EXISTS] PARTITION (k='v', …)[, PARTITION (…)]
    ALTER TABLE t PARTITION (k='v', …) SET LOCATION '…'
    CREATE DATABASE|SCHEMA [IF NOT EXISTS] d [LOCATION '…']

Anything else raises UnsupportedStatement: the stand-in fails that query rather than pretend.
Table names are `db`.`t`, "db"."t" or t (the query's database).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

PARQUET = {
    "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    "SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
}
TEXTFILE = {
    "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
    "SerializationLibrary": "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe",
}
FORMATS = {"PARQUET": PARQUET, "TEXTFILE": TEXTFILE}


class UnsupportedStatement(ValueError):
    """A statement the stand-in does not implement (it fails the query, naming it)."""


class DdlError(RuntimeError):
    """What Athena would report for a failed DDL statement."""


_TOKEN = re.compile(
    r"\s+|--[^\n]*|/\*.*?\*/"
    r"|(?P<string>'(?:[^']|'')*')"
    r"|(?P<quoted>`[^`]*`|\"[^\"]*\")"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_$]*|\d+(?:\.\d+)?)"
    r"|(?P<punct>[(),=<>;.])",
    re.DOTALL,
)


@dataclass(frozen=True)
class Token:
    kind: str  # string, quoted, word, punct
    text: str

    @property
    def value(self) -> str:
        if self.kind == "string":
            return self.text[1:-1].replace("''", "'")
        if self.kind == "quoted":
            return self.text[1:-1]
        return self.text


def tokens(sql: str) -> list[Token]:
    found: list[Token] = []
    position = 0
    while position < len(sql):
        match = _TOKEN.match(sql, position)
        if not match:
            raise UnsupportedStatement(
                f"cannot read the statement at: {sql[position : position + 40]!r}"
            )
        position = match.end()
        for kind in ("string", "quoted", "word", "punct"):
            if match.group(kind):
                found.append(Token(kind, match.group(kind)))
    while found and found[-1].text == ";":
        found.pop()
    return found


class Parser:
    def __init__(self, sql: str) -> None:
        self.items = tokens(sql)
        self.position = 0

    def peek(self, offset: int = 0) -> Token | None:
        index = self.position + offset
        return self.items[index] if index < len(self.items) else None

    def at(self, *words: str) -> bool:
        for offset, word in enumerate(words):
            token = self.peek(offset)
            if token is None or token.kind != "word" or token.text.lower() != word:
                return False
        return True

    def accept(self, *words: str) -> bool:
        if self.at(*words):
            self.position += len(words)
            return True
        return False

    def expect(self, *words: str) -> None:
        if not self.accept(*words):
            raise UnsupportedStatement(f"expected {' '.join(words).upper()} at {self.rest()!r}")

    def punct(self, char: str) -> bool:
        token = self.peek()
        if token is not None and token.kind == "punct" and token.text == char:
            self.position += 1
            return True
        return False

    def need(self, char: str) -> None:
        if not self.punct(char):
            raise UnsupportedStatement(f"expected {char!r} at {self.rest()!r}")

    def next(self) -> Token:
        token = self.peek()
        if token is None:
            raise UnsupportedStatement("the statement ends too early")
        self.position += 1
        return token

    def string(self) -> str:
        token = self.next()
        if token.kind != "string":
            raise UnsupportedStatement(f"expected a quoted string, got {token.text!r}")
        return token.value

    def name(self) -> str:
        token = self.next()
        if token.kind not in ("word", "quoted"):
            raise UnsupportedStatement(f"expected a name, got {token.text!r}")
        return token.value

    def qualified_name(self, default_database: str) -> tuple[str, str]:
        parts = [self.name()]
        while self.peek() is not None and self.peek().text == ".":
            self.position += 1
            parts.append(self.name())
        if len(parts) == 1:
            return default_database, parts[0].lower()
        return parts[-2].lower(), parts[-1].lower()

    def type_text(self) -> str:
        """A Hive type, including parameters and nested types (decimal(10,2), array<string>)."""
        depth = 0
        text = ""
        while True:
            token = self.peek()
            if token is None:
                break
            if token.kind == "punct" and token.text in ",)" and depth == 0:
                break
            if token.kind == "punct" and token.text in "(<":
                depth += 1
            if token.kind == "punct" and token.text in ")>":
                depth -= 1
            text += token.text
            self.position += 1
        return text.lower()

    def columns(self) -> list[dict[str, str]]:
        self.need("(")
        result = []
        while True:
            name = self.name()
            result.append({"Name": name.lower(), "Type": self.type_text()})
            if self.accept("comment"):
                result[-1]["Comment"] = self.string()
            if self.punct(")"):
                return result
            self.need(",")

    def properties(self) -> dict[str, str]:
        self.need("(")
        result: dict[str, str] = {}
        while True:
            key = self.string()
            self.need("=")
            result[key] = self.string()
            if self.punct(")"):
                return result
            self.need(",")

    def partition_spec(self) -> list[tuple[str, str]]:
        self.need("(")
        result = []
        while True:
            key = self.name().lower()
            self.need("=")
            token = self.next()
            result.append((key, token.value))
            if self.punct(")"):
                return result
            self.need(",")

    def done(self) -> bool:
        return self.position >= len(self.items)

    def rest(self) -> str:
        return " ".join(t.text for t in self.items[self.position : self.position + 8])


class Catalog:
    """Glue, through the boto3 client it is given (signed as the caller)."""

    def __init__(self, glue: Any) -> None:
        self.glue = glue

    def run(self, sql: str, default_database: str) -> str:
        """Execute one DDL statement; returns a short description of what it did."""
        parser = Parser(sql)
        try:
            if parser.accept("create", "external", "table"):
                return self._create_table(parser, default_database)
            if parser.accept("drop", "table"):
                return self._drop_table(parser, default_database)
            if parser.accept("alter", "table"):
                return self._alter_table(parser, default_database)
            if parser.accept("create", "database") or parser.accept("create", "schema"):
                return self._create_database(parser)
        except ClientError as error:
            code = error.response["Error"]["Code"]
            raise DdlError(f"{code}: {error.response['Error'].get('Message', '')}") from error
        raise UnsupportedStatement(f"the AWS stand-in does not run this DDL: {sql.strip()[:120]!r}")

    # ---- statements

    def _create_table(self, parser: Parser, default_database: str) -> str:
        if_not_exists = parser.accept("if", "not", "exists")
        database, name = parser.qualified_name(default_database)
        columns = parser.columns()
        partition_keys: list[dict[str, str]] = []
        serde: str | None = None
        serde_parameters: dict[str, str] = {}
        stored_as = "TEXTFILE"
        location: str | None = None
        parameters: dict[str, str] = {}
        while not parser.done():
            if parser.accept("partitioned", "by"):
                partition_keys = parser.columns()
            elif parser.accept("row", "format", "serde"):
                serde = parser.string()
                if parser.accept("with", "serdeproperties"):
                    serde_parameters = parser.properties()
            elif parser.accept("stored", "as"):
                stored_as = parser.name().upper()
                if stored_as not in FORMATS:
                    raise UnsupportedStatement(f"STORED AS {stored_as}")
            elif parser.accept("location"):
                location = parser.string()
            elif parser.accept("tblproperties"):
                parameters = parser.properties()
            elif parser.accept("comment"):
                parser.string()
            else:
                raise UnsupportedStatement(f"CREATE EXTERNAL TABLE … {parser.rest()!r}")
        formats = FORMATS[stored_as]
        table_input: dict[str, Any] = {
            "Name": name,
            "TableType": "EXTERNAL_TABLE",
            "Parameters": {"EXTERNAL": "TRUE", **parameters},
            "PartitionKeys": partition_keys,
            "StorageDescriptor": {
                "Columns": columns,
                "Location": location or "",
                "InputFormat": formats["InputFormat"],
                "OutputFormat": formats["OutputFormat"],
                "SerdeInfo": {
                    "SerializationLibrary": serde or formats["SerializationLibrary"],
                    "Parameters": serde_parameters,
                },
            },
        }
        try:
            self.glue.create_table(DatabaseName=database, TableInput=table_input)
        except ClientError as error:
            if if_not_exists and error.response["Error"]["Code"] == "AlreadyExistsException":
                return f"{database}.{name} exists"
            raise
        return f"created {database}.{name}"

    def _drop_table(self, parser: Parser, default_database: str) -> str:
        if_exists = parser.accept("if", "exists")
        database, name = parser.qualified_name(default_database)
        try:
            self.glue.delete_table(DatabaseName=database, Name=name)
        except ClientError as error:
            if if_exists and error.response["Error"]["Code"] == "EntityNotFoundException":
                return f"{database}.{name} did not exist"
            raise
        return f"dropped {database}.{name}"

    def _create_database(self, parser: Parser) -> str:
        if_not_exists = parser.accept("if", "not", "exists")
        name = parser.name().lower()
        database_input: dict[str, Any] = {"Name": name}
        if parser.accept("location"):
            database_input["LocationUri"] = parser.string()
        try:
            self.glue.create_database(DatabaseInput=database_input)
        except ClientError as error:
            if if_not_exists and error.response["Error"]["Code"] == "AlreadyExistsException":
                return f"{name} exists"
            raise
        return f"created database {name}"

    def _alter_table(self, parser: Parser, default_database: str) -> str:
        database, name = parser.qualified_name(default_database)
        if parser.accept("set", "tblproperties"):
            updates = parser.properties()
            table = self._table(database, name)
            table_input = table_input_of(table)
            table_input["Parameters"] = {**table_input.get("Parameters", {}), **updates}
            self.glue.update_table(DatabaseName=database, TableInput=table_input)
            return f"set {len(updates)} properties of {database}.{name}"
        if parser.accept("add"):
            if_not_exists = parser.accept("if", "not", "exists")
            return self._add_partitions(parser, database, name, if_not_exists)
        if parser.accept("drop"):
            if_exists = parser.accept("if", "exists")
            return self._drop_partitions(parser, database, name, if_exists)
        if parser.accept("partition"):
            spec = parser.partition_spec()
            parser.expect("set", "location")
            location = parser.string()
            table = self._table(database, name)
            values = partition_values(table, spec)
            partition = self.glue.get_partition(
                DatabaseName=database, TableName=name, PartitionValues=values
            )["Partition"]
            descriptor = dict(partition["StorageDescriptor"], Location=location)
            self.glue.update_partition(
                DatabaseName=database,
                TableName=name,
                PartitionValueList=values,
                PartitionInput={
                    "Values": values,
                    "StorageDescriptor": descriptor,
                    "Parameters": partition.get("Parameters", {}),
                },
            )
            return f"moved partition {values} of {database}.{name}"
        if parser.accept("rename", "to"):
            raise DdlError("NOT_SUPPORTED: ALTER TABLE RENAME TO is not supported for Hive tables")
        raise UnsupportedStatement(f"ALTER TABLE … {parser.rest()!r}")

    def _add_partitions(self, parser: Parser, database: str, name: str, if_not_exists: bool):
        table = self._table(database, name)
        inputs = []
        while parser.accept("partition"):
            spec = parser.partition_spec()
            values = partition_values(table, spec)
            location = None
            if parser.accept("location"):
                location = parser.string()
            if location is None:
                base = table["StorageDescriptor"]["Location"].rstrip("/")
                location = base + "/" + "/".join(f"{k}={v}" for k, v in spec) + "/"
            descriptor = dict(table["StorageDescriptor"], Location=location)
            inputs.append({"Values": values, "StorageDescriptor": descriptor})
        if not inputs or not parser.done():
            raise UnsupportedStatement(f"ALTER TABLE ADD … {parser.rest()!r}")
        errors = []
        for batch in chunks(inputs, 100):
            response = self.glue.batch_create_partition(
                DatabaseName=database, TableName=name, PartitionInputList=batch
            )
            errors += [
                e
                for e in response.get("Errors", [])
                if not (if_not_exists and e["ErrorDetail"]["ErrorCode"] == "AlreadyExistsException")
            ]
        if errors:
            detail = errors[0]["ErrorDetail"]
            raise DdlError(f"{detail['ErrorCode']}: {detail.get('ErrorMessage', '')}")
        return f"added {len(inputs)} partitions to {database}.{name}"

    def _drop_partitions(self, parser: Parser, database: str, name: str, if_exists: bool):
        table = self._table(database, name)
        specs = []
        while parser.accept("partition"):
            specs.append(partition_values(table, parser.partition_spec()))
            parser.punct(",")
        if not specs or not parser.done():
            raise UnsupportedStatement(f"ALTER TABLE DROP … {parser.rest()!r}")
        for batch in chunks(specs, 25):
            response = self.glue.batch_delete_partition(
                DatabaseName=database,
                TableName=name,
                PartitionsToDelete=[{"Values": v} for v in batch],
            )
            errors = [
                e
                for e in response.get("Errors", [])
                if not (if_exists and e["ErrorDetail"]["ErrorCode"] == "EntityNotFoundException")
            ]
            if errors:
                detail = errors[0]["ErrorDetail"]
                raise DdlError(f"{detail['ErrorCode']}: {detail.get('ErrorMessage', '')}")
        return f"dropped {len(specs)} partitions of {database}.{name}"

    def _table(self, database: str, name: str) -> dict[str, Any]:
        return self.glue.get_table(DatabaseName=database, Name=name)["Table"]


def partition_values(table: dict[str, Any], spec: list[tuple[str, str]]) -> list[str]:
    keys = [k["Name"].lower() for k in table.get("PartitionKeys", [])]
    given = dict(spec)
    if set(given) != set(keys):
        raise DdlError(
            f"partition spec {sorted(given)} does not match the partition keys {keys} of "
            f"{table['DatabaseName']}.{table['Name']}"
        )
    return [given[k] for k in keys]


TABLE_INPUT_KEYS = (
    "Name",
    "Description",
    "Owner",
    "Retention",
    "StorageDescriptor",
    "PartitionKeys",
    "ViewOriginalText",
    "ViewExpandedText",
    "TableType",
    "Parameters",
)


def table_input_of(table: dict[str, Any]) -> dict[str, Any]:
    return {key: table[key] for key in TABLE_INPUT_KEYS if key in table}


def chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
