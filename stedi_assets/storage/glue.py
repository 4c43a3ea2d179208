"""The AWS Glue Data Catalog as the lakehouse's catalog (s3:// lakes).

Parquet tables get Hive's Parquet SerDe and input/output formats; landing tables (format
``json``) get the OpenX JSON SerDe and the text formats their DDL in ``sql/`` names, so Athena
reads all eight tables by name. Writes compare with what Glue holds first and only call
``UpdateTable``/``BatchUpdatePartition`` when something differs, so a re-run with nothing
changed leaves every table's version untouched.
"""

import re
from collections.abc import Iterator, Sequence
from typing import Any

from botocore.exceptions import ClientError
from pydantic import PrivateAttr

from stedi_assets.aws.clients import AwsClientsResource
from stedi_assets.storage.catalog import (
    CatalogColumn,
    CatalogPartition,
    CatalogResource,
    CatalogTable,
)

# AWS's limits (the Glue API reference), which moto does not enforce.
GET_TABLES_PAGE = 100
GET_PARTITIONS_PAGE = 1000
PARTITION_BATCH = 100  # BatchCreatePartition and BatchUpdatePartition

PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
PARQUET_INPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
JSON_SERDE = "org.openx.data.jsonserde.JsonSerDe"
TEXT_INPUT = "org.apache.hadoop.mapred.TextInputFormat"
TEXT_OUTPUT = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"

_SERDE = re.compile(r"ROW\s+FORMAT\s+SERDE\s+'([^']+)'", re.I)
_SERDE_PROPERTIES = re.compile(r"WITH\s+SERDEPROPERTIES\s*\(([^)]*)\)", re.I)
_FORMATS = re.compile(r"STORED\s+AS\s+INPUTFORMAT\s+'([^']+)'\s+OUTPUTFORMAT\s+'([^']+)'", re.I)
_TABLE_PROPERTIES = re.compile(r"TBLPROPERTIES\s*\(([^)]*)\)", re.I)
_PROPERTY = re.compile(r"'([^']*)'\s*=\s*'([^']*)'")


def glue_location(location: str) -> str:
    """Athena and Glue spell S3 locations ``s3://`` (Spark's ``s3a://`` is Spark's own)."""
    return "s3://" + location.removeprefix("s3a://") if location.startswith("s3a://") else location


def _properties(pattern: re.Pattern[str], ddl: str) -> dict[str, str]:
    match = pattern.search(ddl)
    return dict(_PROPERTY.findall(match.group(1))) if match else {}


def _columns(columns: Sequence[CatalogColumn]) -> list[dict[str, str]]:
    return [{"Name": c.name, "Type": c.type} for c in columns]


def table_input(table: CatalogTable) -> dict[str, Any]:
    """The Glue ``TableInput`` for ``table``."""
    if table.format == "parquet":
        serde = {"SerializationLibrary": PARQUET_SERDE, "Parameters": {"serialization.format": "1"}}
        input_format, output_format = PARQUET_INPUT, PARQUET_OUTPUT
        parameters = {"classification": "parquet", "EXTERNAL": "TRUE"}
    else:
        # Landing tables: what their CREATE EXTERNAL TABLE statement in sql/ says.
        ddl = table.ddl or ""
        serde_match, formats = _SERDE.search(ddl), _FORMATS.search(ddl)
        serde = {
            "SerializationLibrary": serde_match.group(1) if serde_match else JSON_SERDE,
            "Parameters": _properties(_SERDE_PROPERTIES, ddl),
        }
        input_format, output_format = formats.groups() if formats else (TEXT_INPUT, TEXT_OUTPUT)
        parameters = {"classification": "json", **_properties(_TABLE_PROPERTIES, ddl)}
        parameters["EXTERNAL"] = "TRUE"
    return {
        "Name": table.name,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": parameters,
        "PartitionKeys": _columns(table.partition_keys),
        "StorageDescriptor": {
            "Columns": _columns(table.columns),
            "Location": glue_location(table.location),
            "InputFormat": input_format,
            "OutputFormat": output_format,
            "SerdeInfo": serde,
        },
    }


def _comparable(table: dict[str, Any], parameter_keys: Sequence[str]) -> dict[str, Any]:
    """What decides whether Glue's table matches ours. Glue (and Athena DDL) may lowercase
    column names and add parameters of its own, so names compare case-insensitively and only
    our parameters count."""
    sd = table.get("StorageDescriptor", {})
    serde = sd.get("SerdeInfo", {})

    def columns(items: list[dict[str, Any]]) -> list[tuple[str, str]]:
        return [(c["Name"].lower(), c["Type"].lower()) for c in items]

    return {
        "TableType": table.get("TableType"),
        "Parameters": {k: table.get("Parameters", {}).get(k) for k in parameter_keys},
        "PartitionKeys": columns(table.get("PartitionKeys", [])),
        "Columns": columns(sd.get("Columns", [])),
        "Location": sd.get("Location"),
        "InputFormat": sd.get("InputFormat"),
        "OutputFormat": sd.get("OutputFormat"),
        "SerializationLibrary": serde.get("SerializationLibrary"),
        "SerdeParameters": serde.get("Parameters", {}),
    }


def catalog_table(glue_table: dict[str, Any]) -> CatalogTable:
    """A Glue table as the lakehouse's ``CatalogTable``."""
    sd = glue_table.get("StorageDescriptor", {})
    classification = glue_table.get("Parameters", {}).get("classification")
    serde = sd.get("SerdeInfo", {}).get("SerializationLibrary")
    is_parquet = classification == "parquet" or (classification is None and serde == PARQUET_SERDE)
    return CatalogTable(
        name=glue_table["Name"],
        location=sd.get("Location", ""),
        format="parquet" if is_parquet else "json",
        columns=tuple(CatalogColumn(c["Name"], c["Type"]) for c in sd.get("Columns", [])),
        partition_keys=tuple(
            CatalogColumn(c["Name"], c["Type"]) for c in glue_table.get("PartitionKeys", [])
        ),
    )


def _batches(items: Sequence[Any], size: int = PARTITION_BATCH) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _error_code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


class GlueCatalog(CatalogResource):
    """The Glue Data Catalog, database ``database`` (created when missing)."""

    aws: AwsClientsResource
    _client: Any = PrivateAttr(default=None)
    _database_ready: bool = PrivateAttr(default=False)

    @property
    def client(self) -> Any:
        """The boto3 Glue client, built once from the ``aws`` resource."""
        if self._client is None:
            self._client = self.aws.client("glue")
        return self._client

    def ensure_database(self) -> bool:
        """Creates the database if it is missing; returns whether it did."""
        if self._database_ready:
            return False
        created = False
        try:
            self.client.get_database(Name=self.database)
        except ClientError as error:
            if _error_code(error) != "EntityNotFoundException":
                raise
            try:
                self.client.create_database(
                    DatabaseInput={
                        "Name": self.database,
                        "Description": "STEDI lakehouse tables (managed by stedi)",
                    }
                )
                created = True
            except ClientError as race:  # another run created it meanwhile
                if _error_code(race) != "AlreadyExistsException":
                    raise
        self._database_ready = True
        return created

    def _get_glue_table(self, name: str) -> dict[str, Any] | None:
        try:
            return self.client.get_table(DatabaseName=self.database, Name=name)["Table"]
        except ClientError as error:
            if _error_code(error) == "EntityNotFoundException":  # no table, or no database
                return None
            raise

    def upsert_table(self, table: CatalogTable) -> bool:
        self.ensure_database()
        wanted = table_input(table)
        current = self._get_glue_table(table.name)
        if current is None:
            try:
                self.client.create_table(DatabaseName=self.database, TableInput=wanted)
                return True
            except ClientError as error:
                if _error_code(error) != "AlreadyExistsException":
                    raise
                current = self._get_glue_table(table.name)  # a concurrent run created it
                assert current is not None
        keys = list(wanted["Parameters"])
        if _comparable(current, keys) == _comparable(wanted, keys):
            return False
        # Keep parameters others (Athena, crawlers, people) set; ours win.
        wanted["Parameters"] = {**current.get("Parameters", {}), **wanted["Parameters"]}
        self.client.update_table(DatabaseName=self.database, TableInput=wanted)
        return True

    def get_table(self, name: str) -> CatalogTable | None:
        glue_table = self._get_glue_table(name)
        return catalog_table(glue_table) if glue_table else None

    def glue_tables(self) -> list[dict[str, Any]]:
        """Every table of the database as Glue returns it (empty when there is no database)."""
        paginator = self.client.get_paginator("get_tables")
        pages = paginator.paginate(
            DatabaseName=self.database, PaginationConfig={"PageSize": GET_TABLES_PAGE}
        )
        try:
            return [t for page in pages for t in page.get("TableList", [])]
        except ClientError as error:
            if _error_code(error) == "EntityNotFoundException":
                return []
            raise

    def list_tables(self) -> list[CatalogTable]:
        return sorted((catalog_table(t) for t in self.glue_tables()), key=lambda t: t.name)

    def glue_partitions(self, table: str) -> list[dict[str, Any]]:
        paginator = self.client.get_paginator("get_partitions")
        pages = paginator.paginate(
            DatabaseName=self.database,
            TableName=table,
            PaginationConfig={"PageSize": GET_PARTITIONS_PAGE},
        )
        return [p for page in pages for p in page.get("Partitions", [])]

    def upsert_partitions(self, table: str, partitions: Sequence[CatalogPartition]) -> int:
        glue_table = self._get_glue_table(table)
        if glue_table is None:
            raise LookupError(f"table {table!r} is not in Glue database {self.database!r}")
        template = glue_table.get("StorageDescriptor", {})
        # A partition is up to date when it is where it should be and has its table's schema
        # (after a schema change Athena would otherwise read old partitions with old columns).
        existing = {
            tuple(p["Values"]): (
                p.get("StorageDescriptor", {}).get("Location"),
                p.get("StorageDescriptor", {}).get("Columns"),
            )
            for p in self.glue_partitions(table)
        }
        wanted = {tuple(p.values): glue_location(p.location) for p in partitions}
        columns = template.get("Columns")

        def partition_input(values: tuple[str, ...], location: str) -> dict[str, Any]:
            # A partition is stored like its table, only elsewhere.
            return {
                "Values": list(values),
                "StorageDescriptor": {**template, "Location": location},
            }

        new = [partition_input(v, loc) for v, loc in wanted.items() if v not in existing]
        moved = [
            {"PartitionValueList": list(v), "PartitionInput": partition_input(v, loc)}
            for v, loc in wanted.items()
            if v in existing and existing[v] != (loc, columns)
        ]
        for batch in _batches(new):
            response = self.client.batch_create_partition(
                DatabaseName=self.database, TableName=table, PartitionInputList=list(batch)
            )
            _raise_batch_errors(table, "create", response.get("Errors", []))
        for batch in _batches(moved):
            response = self.client.batch_update_partition(
                DatabaseName=self.database, TableName=table, Entries=list(batch)
            )
            _raise_batch_errors(table, "update", response.get("Errors", []))
        return len(new) + len(moved)

    def list_partitions(self, table: str) -> list[CatalogPartition]:
        partitions = [
            CatalogPartition(tuple(p["Values"]), p.get("StorageDescriptor", {}).get("Location", ""))
            for p in self.glue_partitions(table)
        ]
        return sorted(partitions, key=lambda p: p.values)


def _raise_batch_errors(table: str, action: str, errors: list[dict[str, Any]]) -> None:
    # A partition a concurrent run registered first is not an error.
    real = [
        e for e in errors if e.get("ErrorDetail", {}).get("ErrorCode") != "AlreadyExistsException"
    ]
    if real:
        details = "; ".join(
            f"{e.get('PartitionValues')}: {e.get('ErrorDetail', {}).get('ErrorMessage')}"
            for e in real[:5]
        )
        raise RuntimeError(
            f"Glue could not {action} {len(real)} partition(s) of {table}: {details}"
        )
