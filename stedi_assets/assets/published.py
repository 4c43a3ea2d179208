"""lakehouse_published: the run's last step. Every table the run wrote sits on the run's
branch until here; this step runs only when every blocking check upstream passed, and makes
those branches current (write-audit-publish). When the run withdrew a customer, it also erases
them from every table and from the tables' history.

A run that never reaches this step (a failed blocking check, a failed or killed step) publishes
nothing: readers and later runs keep the previous snapshots.
"""

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from stedi_assets.storage.lake import Lake
from stedi_assets.storage.layout import TABLES

PUBLISH_POOL = "stedi_publish"


@asset(
    group_name="publish",
    kinds={"iceberg"},
    deps=list(TABLES),
    # Erasure expires snapshots a concurrent reader may be scanning: one publish at a time.
    pool=PUBLISH_POOL,
    description="Publishes the run's tables (Iceberg branch -> main) once every blocking check "
    "has passed; erases withdrawn customers from every table and its history.",
)
def lakehouse_published(context: AssetExecutionContext, lake: Lake) -> MaterializeResult:
    published = lake.publish()
    for item in published:
        context.log.info(f"published {item.table}: snapshot {item.after} ({item.how})")
    return MaterializeResult(
        metadata={
            "published_tables": MetadataValue.json(
                {
                    item.table: {
                        "snapshot_id": str(item.after),
                        "previous": str(item.before),
                        "how": item.how,
                    }
                    for item in published
                }
            ),
            "tables": len(published),
        }
    )
