"""The landing JSON tables in the AWS Glue Data Catalog (s3:// lakes).

Every other table is an Iceberg table that Iceberg's own Glue catalog keeps. The landing tables
are external JSON tables registered from their DDL in ``sql/``: the OpenX JSON SerDe and the
text formats the DDL names, so Athena reads them by name. A registration compares with what
Glue holds first and only calls ``UpdateTable`` when something differs, so a re-run with
nothing changed leaves every table's version untouched.
"""

import re
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import ClientError
from dagster import ConfigurableResource
from pydantic import PrivateAttr

from stedi_assets.aws.clients import AwsClientsResource
from stedi_assets.storage.ddl import landing_ddl

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


def landing_table_input(table: str, lake_root: str) -> dict[str, Any]:
    """The Glue ``TableInput`` of landing table ``table``: what its DDL in sql/ says."""
    ddl = landing_ddl(table)
    text = ddl.text
    serde_match, formats = _SERDE.search(text), _FORMATS.search(text)
    input_format, output_format = formats.groups() if formats else (TEXT_INPUT, TEXT_OUTPUT)
    return {
        "Name": table,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {
            "classification": "json",
            **_properties(_TABLE_PROPERTIES, text),
            "EXTERNAL": "TRUE",
        },
        "StorageDescriptor": {
            "Columns": [
                {"Name": c.name, "Type": c.hive_type, "Comment": c.comment} for c in ddl.columns
            ],
            "Location": glue_location(ddl.location(lake_root)),
            "InputFormat": input_format,
            "OutputFormat": output_format,
            "SerdeInfo": {
                "SerializationLibrary": serde_match.group(1) if serde_match else JSON_SERDE,
                "Parameters": _properties(_SERDE_PROPERTIES, text),
            },
        },
    }


def _comparable(table: dict[str, Any], parameter_keys: Sequence[str]) -> dict[str, Any]:
    """What decides whether Glue's table matches ours. Glue (and Athena DDL) may lowercase
    column names and add parameters of its own, so names compare case-insensitively and only
    our parameters count."""
    sd = table.get("StorageDescriptor", {})
    serde = sd.get("SerdeInfo", {})

    def columns(items: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
        return [(c["Name"].lower(), c["Type"].lower(), c.get("Comment", "")) for c in items]

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


def _error_code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


class GlueLandingTables(ConfigurableResource):
    """Registers landing tables in Glue database ``database`` (created when missing)."""

    database: str = "stedi"
    aws: AwsClientsResource
    _client: Any = PrivateAttr(default=None)

    @property
    def client(self) -> Any:
        """The boto3 Glue client, built once from the ``aws`` resource."""
        if self._client is None:
            self._client = self.aws.client("glue")
        return self._client

    def ensure_database(self) -> None:
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
            except ClientError as race:  # another run created it meanwhile
                if _error_code(race) != "AlreadyExistsException":
                    raise

    def _get(self, name: str) -> dict[str, Any] | None:
        try:
            return self.client.get_table(DatabaseName=self.database, Name=name)["Table"]
        except ClientError as error:
            if _error_code(error) == "EntityNotFoundException":
                return None
            raise

    def register_landing(self, table: str, lake_root: str) -> bool:
        """Creates or updates landing table ``table``; returns whether Glue changed."""
        self.ensure_database()
        wanted = landing_table_input(table, lake_root)
        current = self._get(table)
        if current is None:
            try:
                self.client.create_table(DatabaseName=self.database, TableInput=wanted)
                return True
            except ClientError as error:
                if _error_code(error) != "AlreadyExistsException":
                    raise
                current = self._get(table)  # a concurrent run created it
                assert current is not None
        keys = list(wanted["Parameters"])
        if _comparable(current, keys) == _comparable(wanted, keys):
            return False
        # Keep parameters others (Athena, crawlers, people) set; ours win.
        wanted["Parameters"] = {**current.get("Parameters", {}), **wanted["Parameters"]}
        self.client.update_table(DatabaseName=self.database, TableInput=wanted)
        return True

    def drop_legacy_table(self, table: str) -> bool:
        """Deletes ``table`` when Glue holds it as a table of earlier versions (plain Parquet,
        not Iceberg), so that Iceberg can create its own; returns whether it did."""
        current = self._get(table)
        if current is None or current.get("Parameters", {}).get("table_type") == "ICEBERG":
            return False
        try:
            self.client.delete_table(DatabaseName=self.database, Name=table)
        except ClientError as error:
            if _error_code(error) != "AccessDeniedException":
                raise
            raise PermissionError(
                f"upgrading {self.database}.{table} (a Glue table of an earlier version) needs "
                "glue:DeleteTable once, which the lake's role does not have: run this first run "
                "as a principal that may delete tables in the database (docs/aws.md)"
            ) from error
        return True
