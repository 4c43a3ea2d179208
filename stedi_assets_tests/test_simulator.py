"""Tests of the landing-zone simulator: determinism, shapes, layout and the six defects."""

from __future__ import annotations

import ast
import datetime
import json
import re
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from stedi_assets.simulator import (
    LandingFile,
    SimulationSummary,
    generate_landing,
    summarize,
    write_landing,
)
from stedi_assets_tests.conftest import REPO, reference_data

MS_PER_DAY = 86_400_000

CUSTOMER_KEYS = (
    "customerName",
    "email",
    "phone",
    "birthDay",
    "serialNumber",
    "registrationDate",
    "lastUpdateDate",
    "shareWithResearchAsOfDate",
    "shareWithPublicAsOfDate",
    "shareWithFriendsAsOfDate",
)
CONSENT_KEYS = CUSTOMER_KEYS[7:]
EXPECTED_TYPES: dict[str, dict[str, type]] = {
    "customer": {key: (int if key.endswith("Date") else str) for key in CUSTOMER_KEYS},
    "accelerometer": {"user": str, "timestamp": int, "x": float, "y": float, "z": float},
    "step_trainer": {"sensorReadingTime": int, "serialNumber": str, "distanceFromObject": int},
}

# Sizes and seeds on which every defect must show: the default and small/odd shapes.
CASES = [
    pytest.param({}, id="default"),
    pytest.param({"customers": 12, "seed": 1}, id="12-customers"),
    pytest.param({"customers": 12, "days": 1, "seed": 2}, id="12-customers-1-day"),
    pytest.param({"customers": 13, "days": 5, "seed": 3}, id="13-customers-5-days"),
    pytest.param({"customers": 100, "days": 2, "seed": 4}, id="100-customers"),
]


def _upload_ms(landing_file: LandingFile) -> int:
    return int(landing_file.relative_path.rsplit("-", 1)[1].removesuffix(".json"))


def _day(epoch_ms: int) -> str:
    return (datetime.date(1970, 1, 1) + datetime.timedelta(days=epoch_ms // MS_PER_DAY)).isoformat()


@dataclass
class Landing:
    """The generated files parsed into records, for assertions."""

    files: list[LandingFile]
    customer_records: list[tuple[int, dict[str, Any]]]  # (upload ms of the file, record)
    accelerometer: list[dict[str, Any]]
    step_trainer: list[dict[str, Any]]

    @classmethod
    def of(cls, files: list[LandingFile]) -> Landing:
        customers, accelerometer, step_trainer = [], [], []
        for landing_file in files:
            records = [json.loads(line) for line in landing_file.lines]
            if landing_file.entity == "customer":
                customers.extend((_upload_ms(landing_file), r) for r in records)
            elif landing_file.entity == "accelerometer":
                accelerometer.extend(records)
            else:
                step_trainer.extend(records)
        return cls(files, customers, accelerometer, step_trainer)

    def latest(self) -> dict[str, dict[str, Any]]:
        """Each e-mail's record with the highest lastUpdateDate."""
        latest: dict[str, dict[str, Any]] = {}
        for _, record in sorted(self.customer_records, key=lambda r: r[1]["lastUpdateDate"]):
            latest[record["email"]] = record
        return latest

    def consenting(self) -> dict[str, dict[str, Any]]:
        return {e: r for e, r in self.latest().items() if "shareWithResearchAsOfDate" in r}

    def accelerometer_times(self) -> dict[str, list[int]]:
        times: dict[str, list[int]] = defaultdict(list)
        for row in self.accelerometer:
            times[row["user"]].append(row["timestamp"])
        return times

    def step_times(self) -> dict[str, set[int]]:
        times: dict[str, set[int]] = defaultdict(set)
        for row in self.step_trainer:
            times[row["serialNumber"]].add(row["sensorReadingTime"])
        return times


@pytest.fixture(scope="module", params=CASES)
def landing(request: pytest.FixtureRequest) -> Landing:
    return Landing.of(generate_landing(**request.param))


@pytest.fixture(scope="module")
def default_files() -> list[LandingFile]:
    return generate_landing()


# --- determinism -------------------------------------------------------------------------


def test_same_arguments_give_byte_identical_files(tmp_path: Path) -> None:
    first = generate_landing(customers=25, days=2, seed=11)
    second = generate_landing(customers=25, days=2, seed=11)
    assert first == second
    write_landing(str(tmp_path / "a"), first)
    write_landing(str(tmp_path / "b"), second)
    written_a = {
        p.relative_to(tmp_path / "a"): p.read_bytes() for p in tmp_path.glob("a/**/*.json")
    }
    written_b = {
        p.relative_to(tmp_path / "b"): p.read_bytes() for p in tmp_path.glob("b/**/*.json")
    }
    assert written_a == written_b
    assert len(written_a) == len(first)


def test_different_seed_gives_different_records(default_files: list[LandingFile]) -> None:
    other = generate_landing(seed=8)
    assert {line for f in other for line in f.lines}.isdisjoint(
        line for f in default_files if f.entity != "customer" for line in f.lines
    )
    assert [f.lines for f in other] != [f.lines for f in default_files]


# --- size, summary and layout -----------------------------------------------------------


def test_default_size_is_small(default_files: list[LandingFile]) -> None:
    summary = summarize(default_files)
    size = sum(len(line.encode()) + 1 for f in default_files for line in f.lines)
    assert size < 1_000_000
    assert summary.customers == 40
    assert summary.days == ("2022-06-18", "2022-06-19", "2022-06-20")
    assert 1_000 <= summary.accelerometer_rows <= 10_000
    assert 300 <= summary.step_trainer_rows < summary.accelerometer_rows
    assert summary.files == len(default_files)


def test_summary_counts_match_the_records(landing: Landing) -> None:
    summary = summarize(landing.files)
    assert summary.customers == len({r["email"] for _, r in landing.customer_records})
    assert summary.consenting_customers == len(landing.consenting())
    assert summary.accelerometer_rows == len(landing.accelerometer)
    assert summary.step_trainer_rows == len(landing.step_trainer)
    reading_days = {_day(r["timestamp"]) for r in landing.accelerometer}
    assert summary.days == tuple(sorted(reading_days))


def test_summary_takes_consent_from_the_latest_record() -> None:
    def customer(email: str, updated: int, research: bool) -> str:
        record = {"email": email, "lastUpdateDate": updated}
        if research:
            record["shareWithResearchAsOfDate"] = updated
        return json.dumps(record)

    files = [
        LandingFile(
            "customer",
            "customer/landing/2022-06-18/customer-1.json",
            (customer("a@test.com", 1, True), customer("b@test.com", 1, False)),
        ),
        LandingFile(
            "customer",
            "customer/landing/2022-06-19/customer-2.json",
            (customer("a@test.com", 5, False), customer("b@test.com", 5, True)),
        ),
        LandingFile(
            "accelerometer",
            "accelerometer/landing/2022-06-19/accelerometer-3.json",
            ('{"user":"a@test.com","timestamp":1655596800000,"x":0.0,"y":0.0,"z":0.0}',) * 2,
        ),
    ]
    assert summarize(files) == SimulationSummary(
        files=3,
        customers=2,
        consenting_customers=1,
        accelerometer_rows=2,
        step_trainer_rows=0,
        days=("2022-06-19",),
    )


def test_readings_fall_on_the_requested_days() -> None:
    files = generate_landing(customers=15, days=2, seed=5, start=datetime.date(2023, 1, 30))
    assert summarize(files).days == ("2023-01-30", "2023-01-31")


def test_every_day_has_readings_of_several_customers(landing: Landing) -> None:
    users_per_day: dict[str, set[str]] = defaultdict(set)
    for row in landing.accelerometer:
        users_per_day[_day(row["timestamp"])].add(row["user"])
    assert users_per_day
    assert all(len(users) >= 3 for users in users_per_day.values()), users_per_day


def test_layout_is_one_folder_per_entity_and_utc_day(landing: Landing) -> None:
    pattern = re.compile(
        r"(customer|accelerometer|step_trainer)/landing/(\d{4}-\d{2}-\d{2})/\1-(\d{13})\.json"
    )
    time_key = {"accelerometer": "timestamp", "step_trainer": "sensorReadingTime"}
    for landing_file in landing.files:
        match = pattern.fullmatch(landing_file.relative_path)
        assert match, landing_file.relative_path
        assert match.group(1) == landing_file.entity
        assert landing_file.lines
        assert not any(line.endswith("\n") for line in landing_file.lines)
        if landing_file.entity in time_key:
            key = time_key[landing_file.entity]
            days = {_day(json.loads(line)[key]) for line in landing_file.lines}
            assert days == {match.group(2)}, landing_file.relative_path
    paths = [f.relative_path for f in landing.files]
    assert len(paths) == len(set(paths))
    assert {f.entity for f in landing.files} == {"customer", "accelerometer", "step_trainer"}


# --- field shapes ----------------------------------------------------------------------


def _check_shapes(entity: str, records: Sequence[dict[str, Any]]) -> None:
    types = EXPECTED_TYPES[entity]
    for record in records:
        keys = tuple(record)
        if entity == "customer":
            # Key order as in the full record; only consent fields may be left out.
            assert keys == tuple(k for k in CUSTOMER_KEYS if k in record), keys
            assert set(CUSTOMER_KEYS) - set(keys) <= set(CONSENT_KEYS), keys
        else:
            assert keys == tuple(types), keys
        for key, value in record.items():
            assert type(value) is types[key], (key, value)


def test_fields_have_the_reference_names_order_and_types(landing: Landing) -> None:
    _check_shapes("customer", [r for _, r in landing.customer_records])
    _check_shapes("accelerometer", landing.accelerometer)
    _check_shapes("step_trainer", landing.step_trainer)
    for _, record in landing.customer_records:
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", record["birthDay"])
        assert re.fullmatch(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", record["serialNumber"])
        assert re.fullmatch(r"[A-Za-z]+\.[A-Za-z]+\d*@test\.com", record["email"])
    assert all(200 <= r["distanceFromObject"] <= 300 for r in landing.step_trainer)


def _reference_lines(entity: str, limit: int = 300) -> list[str]:
    folder = reference_data() / entity / "landing"
    lines: list[str] = []
    for path in sorted(folder.rglob("*.json")):
        with path.open(encoding="utf-8") as handle:
            lines.extend(line.rstrip("\n") for _, line in zip(range(limit), handle, strict=False))
    return lines


@pytest.mark.parametrize("entity", ["customer", "accelerometer", "step_trainer"])
def test_fields_and_formatting_match_the_reference_data(
    entity: str, default_files: list[LandingFile]
) -> None:
    reference = _reference_lines(entity)
    ours = [line for f in default_files if f.entity == entity for line in f.lines]
    reference_records = [json.loads(line) for line in reference]
    our_records = [json.loads(line) for line in ours]

    def key_union(records: list[dict[str, Any]]) -> set[str]:
        return {key for record in records for key in record}

    def key_types(records: list[dict[str, Any]]) -> dict[str, set[str]]:
        types: dict[str, set[str]] = defaultdict(set)
        for record in records:
            for key, value in record.items():
                types[key].add(type(value).__name__)
        return dict(types)

    assert key_union(our_records) == key_union(reference_records)
    assert key_types(our_records) == key_types(reference_records)
    # The reference's canonical key order is the order of its fullest records.
    full_order = max((tuple(r) for r in reference_records), key=len)
    for record in our_records:
        assert tuple(record) == tuple(k for k in full_order if k in record)

    # Same JSON text style: default separators for customers, compact for readings.
    def compact(line: str) -> bool:
        return json.dumps(json.loads(line), separators=(",", ":")) == line

    assert {compact(line) for line in ours} == {compact(line) for line in reference}


# --- readings belong together ------------------------------------------------------------


def test_step_readings_share_timestamps_with_their_owners_accelerometer(landing: Landing) -> None:
    serial_owners: dict[str, set[str]] = defaultdict(set)
    for email, record in landing.latest().items():
        serial_owners[record["serialNumber"]].add(email)
    accelerometer = {e: set(t) for e, t in landing.accelerometer_times().items()}
    for row in landing.step_trainer:
        owners = serial_owners[row["serialNumber"]]
        assert any(row["sensorReadingTime"] in accelerometer.get(e, ()) for e in owners), row


def test_consenting_customers_with_unique_serials_have_joinable_readings(
    landing: Landing,
) -> None:
    latest = landing.latest()
    serial_count: dict[str, int] = defaultdict(int)
    for record in latest.values():
        serial_count[record["serialNumber"]] += 1
    accelerometer = landing.accelerometer_times()
    steps = landing.step_times()
    joinable = [
        email
        for email, record in landing.consenting().items()
        if serial_count[record["serialNumber"]] == 1
        and any(
            t >= record["shareWithResearchAsOfDate"] and t in steps[record["serialNumber"]]
            for t in accelerometer.get(email, ())
        )
    ]
    assert len(joinable) >= 4, joinable


# --- the six defects ----------------------------------------------------------------------


def test_defect_1_about_half_without_research_consent(landing: Landing) -> None:
    latest = landing.latest()
    declining = [r for r in latest.values() if "shareWithResearchAsOfDate" not in r]
    assert 0.3 <= len(declining) / len(latest) <= 0.6
    # Absent, never null: no consent field anywhere carries null.
    assert all(v is not None for _, r in landing.customer_records for v in r.values())
    assert any("shareWithPublicAsOfDate" not in r for _, r in landing.customer_records)
    assert any("shareWithFriendsAsOfDate" not in r for _, r in landing.customer_records)


def test_defect_2_readings_before_and_after_consent(landing: Landing) -> None:
    times = landing.accelerometer_times()
    straddling = [
        email
        for email, record in landing.consenting().items()
        if email in times
        and min(times[email]) < record["shareWithResearchAsOfDate"] < max(times[email])
    ]
    assert len(straddling) >= 2, straddling


def test_defect_3_several_rows_per_user_and_timestamp(landing: Landing) -> None:
    # Each distinct file once: the re-uploaded copy (defect 4) repeats rows on purpose.
    contents = {f.lines: None for f in landing.files if f.entity == "accelerometer"}
    triples: dict[tuple[str, int], list[tuple[float, float, float]]] = defaultdict(list)
    for row in (json.loads(line) for lines in contents for line in lines):
        triples[(row["user"], row["timestamp"])].append((row["x"], row["y"], row["z"]))
    repeated = [key for key, values in triples.items() if len(values) >= 2]
    assert len(repeated) >= 10
    # Rows sharing a timestamp differ in x/y/z, like the reference data.
    assert all(len(set(values)) == len(values) for values in triples.values())


@pytest.mark.parametrize("entity", ["accelerometer", "step_trainer"])
def test_defect_4_one_file_uploaded_twice(landing: Landing, entity: str) -> None:
    by_content: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for landing_file in landing.files:
        if landing_file.entity == entity:
            by_content[landing_file.lines].append(landing_file.relative_path)
    copies = [paths for paths in by_content.values() if len(paths) > 1]
    assert len(copies) == 1, copies
    first, second = copies[0]
    assert first != second
    assert first.rsplit("/", 1)[0] == second.rsplit("/", 1)[0]  # same day folder
    # No other file is a copy of anything (customer files included).
    all_lines = [f.lines for f in landing.files]
    assert len(all_lines) - len(set(all_lines)) == 2


def test_defect_5_consenting_customers_with_readings_share_a_serial(landing: Landing) -> None:
    times = landing.accelerometer_times()
    by_serial: dict[str, list[str]] = defaultdict(list)
    for email, record in landing.consenting().items():
        if email in times:
            by_serial[record["serialNumber"]].append(email)
    shared = {serial: emails for serial, emails in by_serial.items() if len(emails) >= 2}
    assert len(shared) >= 1, by_serial
    # The shared device has step readings, so the ambiguity reaches the join.
    assert all(serial in landing.step_times() for serial in shared)


def test_defect_6_a_later_record_withdraws_consent(landing: Landing) -> None:
    records: dict[str, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    for uploaded, record in landing.customer_records:
        records[record["email"]].append((uploaded, record))
    withdrawals = [
        email
        for email, history in records.items()
        for earlier_file, earlier in history
        for later_file, later in history
        if later_file > earlier_file
        and later["lastUpdateDate"] > earlier["lastUpdateDate"]
        and "shareWithResearchAsOfDate" in earlier
        and "shareWithResearchAsOfDate" not in later
    ]
    assert len(withdrawals) >= 1
    assert all(email not in landing.consenting() for email in withdrawals)
    assert all(email in landing.accelerometer_times() for email in withdrawals)


# --- writing ---------------------------------------------------------------------------------


def test_write_landing_writes_the_layout(tmp_path: Path, default_files: list[LandingFile]) -> None:
    lake = tmp_path / "lake"
    write_landing(str(lake), default_files)
    written = sorted(p.relative_to(lake).as_posix() for p in lake.rglob("*") if p.is_file())
    assert written == sorted(f.relative_path for f in default_files)
    for landing_file in default_files:
        text = (lake / landing_file.relative_path).read_bytes().decode("utf-8")
        assert text == "".join(line + "\n" for line in landing_file.lines)
    assert {p.name for p in lake.iterdir()} == {"customer", "accelerometer", "step_trainer"}


@pytest.mark.parametrize("lake", ["file:///tmp/lake", "gs://bucket/prefix", "hdfs://nn/lake"])
def test_write_landing_rejects_uris_other_than_s3(tmp_path: Path, lake: str) -> None:
    files = generate_landing(customers=12, days=1)
    with pytest.raises(ValueError, match="local directory or to s3://"):
        write_landing(lake, files)


@pytest.mark.parametrize("prefix", ["sim/lake", ""])
def test_write_landing_uploads_to_s3(moto_endpoint: str, tmp_path: Path, prefix: str) -> None:
    """The same bytes as a local write, below the prefix, on the session's moto server."""
    import boto3

    bucket = f"stedi-simulated-{len(prefix)}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    files = generate_landing(customers=12, days=2)
    write_landing(f"s3://{bucket}/{prefix}".rstrip("/"), files)
    write_landing(str(tmp_path), files)

    listed = boto3.client("s3").list_objects_v2(Bucket=bucket)["Contents"]
    keys = {o["Key"] for o in listed}
    expected = {f"{prefix}/{f.relative_path}".lstrip("/") for f in files}
    assert keys == expected
    for landing_file in files:
        key = f"{prefix}/{landing_file.relative_path}".lstrip("/")
        body = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        assert body == (tmp_path / landing_file.relative_path).read_bytes()


def test_write_landing_to_s3_checks_every_path_before_uploading(moto_endpoint: str) -> None:
    import boto3

    boto3.client("s3").create_bucket(Bucket="stedi-simulated-escape")
    good = LandingFile("customer", "customer/landing/customer-1.json", ("{}",))
    escaping = LandingFile("customer", "../customer-2.json", ("{}",))
    with pytest.raises(ValueError, match="below the lake"):
        write_landing("s3://stedi-simulated-escape/lake", [good, escaping])
    assert boto3.client("s3").list_objects_v2(Bucket="stedi-simulated-escape")["KeyCount"] == 0


def test_write_landing_rejects_paths_outside_the_lake(tmp_path: Path) -> None:
    escaping = LandingFile("customer", "../customer-1.json", ("{}",))
    with pytest.raises(ValueError, match="below the lake"):
        write_landing(str(tmp_path / "lake"), [escaping])
    assert not (tmp_path / "customer-1.json").exists()


# --- arguments and dependencies ----------------------------------------------------------


@pytest.mark.parametrize("arguments", [{"customers": 0}, {"days": 0}])
def test_rejects_empty_simulations(arguments: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        generate_landing(**arguments)


def test_simulator_imports_the_standard_library_only() -> None:
    """At module level, and so for generating and writing locally: standard library only. The
    one exception is the S3 branch of ``write_landing``, which imports the project's S3
    module (boto3 through dagster-aws) when it runs."""
    source = (REPO / "stedi_assets" / "simulator.py").read_text(encoding="utf-8")
    tree = ast.parse(source)
    imported = set()
    lazy = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "stedi_assets.storage.s3" and node not in tree.body:
                lazy.add(node.module)
                continue
            imported.add(node.module.split(".")[0])
    assert imported
    assert imported <= set(sys.stdlib_module_names), imported - set(sys.stdlib_module_names)
    assert lazy <= {"stedi_assets.storage.s3"}
