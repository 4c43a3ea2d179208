"""Broken landing files: good rows still flow, bad rows land in quarantine with a reason."""

import json
from pathlib import Path

from dagster import AssetKey, DagsterInstance
from pyiceberg.catalog.sql import SqlCatalog
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from stedi_assets.runner import run_lakehouse
from stedi_assets_tests.conftest import lake_catalog, lake_settings, published_table


def test_bad_lines_are_quarantined_and_good_lines_of_the_same_file_pass(
    spark: SparkSession, simulated_lake: Path
) -> None:
    settings = lake_settings(simulated_lake)
    assert run_lakehouse(settings, "privacy").success
    known = (
        published_table(spark, simulated_lake, "accelerometer_trusted")
        .orderBy("user", "timestamp")
        .first()
    )
    day_folder = simulated_lake / "accelerometer" / "landing" / known.day

    def reading(offset: int, **changes: object) -> str:
        record = {
            "user": known.user,
            "timestamp": known.timestamp + offset,
            "x": 0.5,
            "y": 0.5,
            "z": 0.5,
        }
        return json.dumps({**record, **changes})

    good = [reading(1), reading(2, extra="unknown fields are ignored")]
    bad = [
        "this is not json",
        reading(3, x="abc"),  # wrong type
        reading(4, timestamp="yesterday"),  # wrong type of a required field
        json.dumps({"timestamp": known.timestamp + 5, "x": 1.0, "y": 1.0, "z": 1.0}),  # no user
        reading(6)[:25],  # truncated last line
    ]
    (day_folder / "mixed.json").write_text("\n".join([good[0], *bad[:4], good[1], bad[4]]))
    (day_folder / "empty.json").write_text("")
    (day_folder / "bom.json").write_bytes(b"\xef\xbb\xbf" + (reading(7) + "\n").encode())
    (day_folder / "not-json.json").write_bytes(bytes(range(1, 256)))
    # Implausible times and measurements, in a file outside any day folder: never lost, never
    # a crash (the huge time is no date Spark or Python can represent).
    implausible = [
        reading(0, timestamp=99999999999999999),
        reading(0, timestamp=known.timestamp // 1000),  # seconds, not milliseconds
        reading(0, timestamp=1893456000000),  # 2030-01-01
        reading(8).replace('"x": 0.5', '"x": NaN'),
        reading(9).replace('"y": 0.5', '"y": 1e400'),
    ]
    (day_folder.parent / "implausible.json").write_text("\n".join(implausible) + "\n")

    with DagsterInstance.ephemeral() as instance:
        summary = run_lakehouse(settings, "privacy", instance=instance)
        previews = [
            record.asset_materialization.metadata["preview"].value
            for record in instance.fetch_materializations(
                AssetKey("accelerometer_quarantine"), limit=100
            ).records
        ]

    assert summary.success, summary.failures
    # The raw lines hold e-mails: a preview (kept in Dagster's event log) masks them.
    assert previews and all("@" not in p for p in previews)
    assert any("does not parse" in p and "***" in p for p in previews)
    trusted = published_table(spark, simulated_lake, "accelerometer_trusted")
    readings = trusted.where(F.col("user") == known.user)
    offsets = {r.timestamp - known.timestamp for r in readings.where(F.col("x") == 0.5).collect()}
    assert offsets == {1, 2, 7}  # the good lines of mixed.json and the BOM file
    quarantine = published_table(spark, simulated_lake, "accelerometer_quarantine")
    mixed = quarantine.where(F.col("source_file").endswith("/mixed.json"))
    reasons = sorted(r.reason for r in mixed.collect())
    assert len(reasons) == len(bad)
    assert sum("missing required field user" in r for r in reasons) == 1
    assert sum("does not parse" in r for r in reasons) == 4
    odd = quarantine.where(F.col("source_file").endswith("/implausible.json"))
    odd_reasons = [r.reason for r in odd.collect()]
    assert sum("plausible window" in r for r in odd_reasons) == 3
    assert sum("not a finite number" in r for r in odd_reasons) == 2
    assert quarantine.where(F.col("source_file").endswith("/not-json.json")).count() >= 1
    # Its invalid UTF-8 is replaced (U+FFFD), so other engines decode the quarantine too.
    other = SqlCatalog(
        "lake",
        uri=f"sqlite:///{simulated_lake}/_catalog/catalog.sqlite",
        warehouse=f"file://{simulated_lake}",
    )
    records = (
        other.load_table("stedi_quarantine.accelerometer_quarantine").scan().to_pandas()["record"]
    )
    assert records.str.contains("\ufffd").any()
    assert "this is not json" in {r.record for r in mixed.collect()}
    conformance = next(
        c
        for c in summary.checks
        if (c.asset, c.name) == ("accelerometer_landing", "conforms_to_ddl")
    )
    quarantined = summary.quarantined["accelerometer_landing"]
    assert conformance.violations == quarantined == quarantine.count() >= len(bad) + 1
    assert not conformance.blocking_failure


def test_a_day_run_writes_that_days_quarantine_and_the_undated_lines(
    spark: SparkSession, simulated_lake: Path
) -> None:
    settings = lake_settings(simulated_lake)
    assert run_lakehouse(settings, "privacy").success
    landing = simulated_lake / "accelerometer" / "landing"
    days = sorted(p.name for p in landing.iterdir() if p.is_dir())
    first, second = days[0], days[1]
    (landing / first / "bad-first.json").write_text("garbled on the first day\n")
    (landing / second / "bad-second.json").write_text("garbled on the second day\n")
    (landing / "undated.json").write_text("garbled in no day folder\n")

    assert run_lakehouse(settings, "privacy", days=(second, second)).success

    def quarantined() -> dict[str, str | None]:
        table = published_table(spark, simulated_lake, "accelerometer_quarantine")
        return {
            r.record: r.day for r in table.where(F.col("record").startswith("garbled")).collect()
        }

    # The second day's run read the first day's folder too (a reading may cross midnight),
    # but writes only its own day's quarantine, and the lines no day can be given.
    assert quarantined() == {
        "garbled on the second day": second,
        "garbled in no day folder": None,
    }
    assert run_lakehouse(settings, "privacy").success
    assert quarantined() == {
        "garbled on the first day": first,
        "garbled on the second day": second,
        "garbled in no day folder": None,
    }
    # An Iceberg table partitioned by day.
    catalog = lake_catalog(simulated_lake)
    partitions = spark.sql(
        f"SELECT partition.day AS day FROM {catalog.identifier('accelerometer_quarantine')}.files"
    )
    assert {r.day for r in partitions.collect()} >= {first, second, None}
