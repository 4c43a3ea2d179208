"""``stedi query --engine athena``: SQL over the Glue tables, run by Athena.

Runs through dagster-aws's ``AthenaClientResource`` (credentials, region and the endpoint
override come from the AWS chain). Its client sends only the SQL and the workgroup, so two
request parameters are added on their way out: the Glue database, so tables resolve by their
bare names as in the local engine, and where Athena writes results (the lake's
``_athena_results/`` folder unless ``STEDI_ATHENA_OUTPUT`` says otherwise; a workgroup that
enforces its own location overrides it).
"""

import os
from typing import Any

from dagster_aws.athena import AthenaClientResource

from stedi_assets.storage.s3 import aws_region

RESULTS_FOLDER = "_athena_results"
DEFAULT_WORKGROUP = "primary"


def results_location(lake_root: str) -> str:
    """``$STEDI_ATHENA_OUTPUT``, else ``<lake>/_athena_results/``."""
    configured = os.environ.get("STEDI_ATHENA_OUTPUT")
    if configured:
        return configured
    if not lake_root.startswith(("s3://", "s3a://")):
        raise ValueError(
            "--engine athena needs an s3:// lake (Athena reads tables from the Glue catalog)"
        )
    return "s3://" + lake_root.split("://", 1)[1].rstrip("/") + f"/{RESULTS_FOLDER}/"


def athena_resource() -> AthenaClientResource:
    """dagster-aws's Athena resource; workgroup from ``STEDI_ATHENA_WORKGROUP``."""
    # The resource has no region setting and its clients use boto3's default session, which
    # reads AWS_DEFAULT_REGION but not AWS_REGION; pass the chain's region on that way.
    region = aws_region()
    if region and not os.environ.get("AWS_DEFAULT_REGION"):
        os.environ["AWS_DEFAULT_REGION"] = region
    return AthenaClientResource(
        workgroup=os.environ.get("STEDI_ATHENA_WORKGROUP", DEFAULT_WORKGROUP), polling_interval=1
    )


def run_athena_query(
    sql: str, database: str, output_location: str, resource: AthenaClientResource | None = None
) -> list[tuple[str | None, ...]]:
    """Runs ``sql`` in Athena against ``database`` and returns its rows (as strings)."""
    client = (resource or athena_resource()).get_client()

    def add_context(params: dict[str, Any], **_: Any) -> None:
        params.setdefault("QueryExecutionContext", {"Database": database})
        params.setdefault("ResultConfiguration", {"OutputLocation": output_location})

    client.client.meta.events.register(
        "provide-client-params.athena.StartQueryExecution", add_context
    )
    return client.execute_query(sql, fetch_results=True) or []
