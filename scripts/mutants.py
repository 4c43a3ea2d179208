"""Hand-written mutants: each breaks one check or one rule, and the tests named for it must fail.

For each mutant the repository (its tracked and untracked, not ignored, files) is copied to a
temporary folder, the mutant's exact original text is replaced there (the working tree is never
edited), and only the mutant's tests run, with pytest, against the copy. A mutant is *caught*
when its tests fail, and *SURVIVED* when they pass. First, unless ``--no-baseline``, every named
test runs once on the unmutated copy: a test that fails anyway proves nothing.

    make mutants                        # every mutant; exit 1 if any survived
    .venv/bin/python scripts/mutants.py --list
    .venv/bin/python scripts/mutants.py --only audit --no-baseline
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHECKS = "stedi_assets_tests/test_checks.py"
RULES = "stedi_assets_tests/test_rules.py"
RECONCILIATION = "stedi_assets_tests/test_reconciliation.py"


@dataclass(frozen=True)
class Mutant:
    name: str
    file: str  # relative to the repository
    original: str  # must occur exactly once in ``file``
    replacement: str
    tests: tuple[str, ...]  # pytest node ids that must fail


def _checks(test: str, *params: str) -> tuple[str, ...]:
    return tuple(f"{CHECKS}::{test}[{p}]" for p in params) if params else (f"{CHECKS}::{test}",)


def _rules(test: str, *params: str) -> tuple[str, ...]:
    return tuple(f"{RULES}::{test}[{p}]" for p in params) if params else (f"{RULES}::{test}",)


_READING_FAILS = "test_each_reading_check_fails_on_exactly_its_violation"
_FAMILY = "test_a_failing_blocking_check_of_each_family_stops_everything_downstream"

MUTANTS: tuple[Mutant, ...] = (
    # --- every check, reporting 0 violations whatever the data -----------------------------------
    Mutant(
        "customer_trusted · consent_present always passes",
        "stedi_assets/assets/customer_trusted.py",
        'customer_trusted.where(F.col("shareWithResearchAsOfDate").isNull()).count()',
        "0",
        _checks(
            "test_consent_present_fails_on_a_customer_without_research_consent",
            "customer_trusted",
        ),
    ),
    Mutant(
        "customer_trusted · one_row_per_email always passes",
        "stedi_assets/assets/customer_trusted.py",
        'duplicate_keys(customer_trusted, "email")',
        "0",
        _checks("test_one_row_per_email_fails_on_a_repeated_email", "customer_trusted"),
    ),
    Mutant(
        "accelerometer_trusted / step_trainer_trusted · readings_of_consenting_customers "
        "always passes",
        "stedi_assets/assets/reading_checks.py",
        "unattributed,\n                    spec=owned,",
        "0,\n                    spec=owned,",
        _checks(
            _READING_FAILS,
            "accelerometer_trusted-readings_of_consenting_customers",
            "step_trainer_trusted-readings_of_consenting_customers",
        ),
    ),
    Mutant(
        "accelerometer_trusted / step_trainer_trusted · no_reading_before_consent always passes",
        "stedi_assets/assets/reading_checks.py",
        "early,\n                    spec=after_consent,",
        "0,\n                    spec=after_consent,",
        _checks(
            _READING_FAILS,
            "accelerometer_trusted-no_reading_before_consent",
            "step_trainer_trusted-no_reading_before_consent",
        ),
    ),
    Mutant(
        "accelerometer_trusted / step_trainer_trusted · no_duplicate_readings always passes",
        "stedi_assets/assets/reading_checks.py",
        "duplicate_rows_per_day(readings, day),",
        "0,",
        _checks(
            _READING_FAILS,
            "accelerometer_trusted-no_duplicate_readings",
            "step_trainer_trusted-no_duplicate_readings",
        ),
    ),
    Mutant(
        "customers_curated · one_row_per_email always passes",
        "stedi_assets/assets/customers_curated.py",
        'duplicate_keys(customers_curated, "email")',
        "0",
        _checks("test_one_row_per_email_fails_on_a_repeated_email", "customers_curated"),
    ),
    Mutant(
        "customers_curated · one_customer_per_serial always passes",
        "stedi_assets/assets/customers_curated.py",
        'duplicate_keys(customers_curated, "serialNumber")',
        "0",
        _checks("test_one_customer_per_serial_fails_on_a_shared_serial_and_names_it"),
    ),
    Mutant(
        "customers_curated · consent_present always passes",
        "stedi_assets/assets/customers_curated.py",
        'customers_curated.where(F.col("shareWithResearchAsOfDate").isNull()).count()',
        "0",
        _checks(
            "test_consent_present_fails_on_a_customer_without_research_consent",
            "customers_curated",
        ),
    ),
    Mutant(
        "machine_learning_curated · no_pii_columns always passes",
        "stedi_assets/assets/machine_learning_curated.py",
        "        len(leaked),",
        "        0,",
        _checks("test_no_pii_columns_fails_on_each_identifier_and_names_it", "user"),
    ),
    Mutant(
        "machine_learning_curated · same_customer_pairing always passes",
        "stedi_assets/assets/machine_learning_curated.py",
        "cross_customer_rows(machine_learning_curated, accelerometer_trusted, customers_curated),",
        "0,",
        _checks("test_same_customer_pairing_fails_on_pairs_of_two_customers_devices"),
    ),
    Mutant(
        "machine_learning_curated · no_rows_of_non_consenting_customers always passes",
        "stedi_assets/assets/consent_audit.py",
        "        sum(counts.values()),",
        "        0,",
        _checks(
            "test_consent_audit_fails_on_one_row_of_a_non_consenting_customer_in_any_table",
            "accelerometer_trusted",
        ),
    ),
    Mutant(
        "every landing table · conforms_to_ddl always passes",
        "stedi_assets/assets/landing.py",
        "            int(lines),",
        "            0,",
        _checks(
            "test_conforms_to_ddl_fails_on_quarantined_lines_and_names_the_file",
            "step_trainer_landing",
        ),
    ),
    # --- the consent audit's own weaknesses ------------------------------------------------------
    Mutant(
        "consent audit · machine_learning_curated left out of the tables it reads",
        "stedi_assets/assets/consent_audit.py",
        '        "machine_learning_curated": machine_learning_curated,\n    }',
        "    }",
        _checks(
            "test_consent_audit_fails_on_one_row_of_a_non_consenting_customer_in_any_table",
            "machine_learning_curated",
        ),
    ),
    Mutant(
        "consent audit · a garbled latest record counts as consent",
        "stedi_assets/assets/consent_audit.py",
        'doubtful = garbled | F.col("shareWithResearchAsOfDate").isNull()',
        'doubtful = F.col("shareWithResearchAsOfDate").isNull()',
        _checks("test_the_audit_and_the_rules_agree_on_who_consents_in_tricky_records"),
    ),
    Mutant(
        "customer_trusted / reading tables · every_landing_row_accounted_for always passes",
        "stedi_assets/assets/reconciliation.py",
        "        sum(mismatches.values()),",
        "        0,",
        (
            *_checks(_FAMILY, "reconciliation"),
            *tuple(
                f"{RECONCILIATION}::test_the_{kind}_reconciliation_fails_when_its_table_misses_"
                f"or_gains_a_row[{p}]"
                for kind, p in (
                    ("customer", "trusted row lost"),
                    ("reading", "accelerometer_trusted-trusted row lost"),
                )
            ),
        ),
    ),
    Mutant(
        "every quarantine table · holds_every_rejected_line always passes",
        "stedi_assets/assets/reconciliation.py",
        "            abs(written - expected),",
        "            0,",
        tuple(
            f"{RECONCILIATION}::test_the_quarantine_check_fails_when_the_quarantine_misses_or_"
            f"gains_a_line[{table}-row lost]"
            for table in ("customer_quarantine", "accelerometer_quarantine")
        ),
    ),
    # --- blocking: a failing check that no longer blocks -----------------------------------------
    Mutant(
        "customers_curated · consent_present not blocking",
        "stedi_assets/assets/customers_curated.py",
        '    asset=customers_curated, blocking=True, description="Every customer carries',
        '    asset=customers_curated, blocking=False, description="Every customer carries',
        _checks(_FAMILY, "customers_curated_checks"),
    ),
    Mutant(
        "accelerometer_trusted / step_trainer_trusted · no_duplicate_readings not blocking",
        "stedi_assets/assets/reading_checks.py",
        '        blocking=True,\n        description="No exact duplicate rows',
        '        blocking=False,\n        description="No exact duplicate rows',
        _checks(_FAMILY, "reading_checks"),
    ),
    Mutant(
        "accelerometer_trusted · every_landing_row_accounted_for not blocking",
        "stedi_assets/assets/reconciliation.py",
        '    asset=accelerometer_trusted,\n    name="every_landing_row_accounted_for",\n'
        "    blocking=True,",
        '    asset=accelerometer_trusted,\n    name="every_landing_row_accounted_for",\n'
        "    blocking=False,",
        _checks(_FAMILY, "reconciliation"),
    ),
    # --- rules -----------------------------------------------------------------------------------
    Mutant(
        "rule · consent filter dropped",
        "stedi_assets/assets/customer_trusted.py",
        'return latest.where(F.col("shareWithResearchAsOfDate").isNotNull())',
        "return latest",
        _rules("test_customer_trusted_keeps_only_customers_with_research_consent"),
    ),
    Mutant(
        "rule · the earliest record instead of the latest",
        "stedi_assets/assets/customer_trusted.py",
        'F.col("lastUpdateDate").desc_nulls_last(),',
        'F.col("lastUpdateDate").asc_nulls_last(),',
        _rules("test_customer_trusted_latest_record_wins_so_a_withdrawal_removes_the_customer"),
    ),
    Mutant(
        "rule · `>` instead of `>=` at consent time",
        "stedi_assets/consent.py",
        'F.col(self.reading_time) >= F.col("_consent")',
        'F.col(self.reading_time) > F.col("_consent")',
        _rules("test_accelerometer_trusted_privacy_drops_readings_before_consent"),
    ),
    Mutant(
        "rule · no de-duplication of accelerometer readings",
        "stedi_assets/assets/accelerometer_trusted.py",
        "privacy=privacy).dropDuplicates()",
        "privacy=privacy)",
        _rules("test_accelerometer_trusted_keeps_exact_duplicates_once", "True"),
    ),
    Mutant(
        "rule · customers_curated's readers found without consent",
        "stedi_assets/assets/accelerometer_trusted.py",
        "consenting = OWNERSHIP.consenting(readings, customer_trusted, privacy=privacy)",
        "consenting = readings",
        _rules("test_accelerometer_users_are_exactly_the_users_of_accelerometer_trusted", "True"),
    ),
    Mutant(
        "rule · no de-duplication of step trainer readings",
        "stedi_assets/assets/step_trainer_trusted.py",
        "return owned.dropDuplicates()",
        "return owned",
        _rules("test_step_trainer_trusted_keeps_exact_duplicates_once", "True"),
    ),
    Mutant(
        "rule · a timestamp-only join in the privacy profile",
        "stedi_assets/assets/machine_learning_curated.py",
        "    if privacy:\n        pairs = same_customer_pairs(",
        "    if False:\n        pairs = same_customer_pairs(",
        _rules("test_machine_learning_privacy_pairs_only_a_customers_own_devices"),
    ),
    Mutant(
        "rule · an identifier column kept in machine_learning_curated",
        "stedi_assets/assets/machine_learning_curated.py",
        'MACHINE_LEARNING_COLUMNS = (\n    "sensorReadingTime",',
        'MACHINE_LEARNING_COLUMNS = (\n    "user",\n    "sensorReadingTime",',
        _rules("test_machine_learning_curated_has_no_direct_identifier", "True"),
    ),
    Mutant(
        "rule · serial ambiguity among consenting customers only",
        "stedi_assets/assets/customers_curated.py",
        "    ambiguous = ambiguous_serials(registered_customers(customer_landing))\n"
        "    return customers.join(",
        "    ambiguous = ambiguous_serials(customer_trusted)\n    return customers.join(",
        _rules(
            "test_customers_curated_privacy_leaves_out_a_serial_shared_with_a_non_consenting_"
            "customer"
        ),
    ),
    # --- behaviours that once survived -----------------------------------------------------------
    Mutant(
        "landing · the quarantine ignores the day-folder rule",
        "stedi_assets/assets/landing.py",
        "condition = condition | F.coalesce(_days_from_its_folder(table) > 1, F.lit(False))",
        "condition = condition | F.lit(False)",
        _checks("test_a_reading_more_than_a_day_from_its_folder_day_is_quarantined"),
    ),
    Mutant(
        "customer_trusted · a garbled latest record treated as absent",
        "stedi_assets/assets/customer_trusted.py",
        'latest = conforming(latest_customer_records(customer_landing), "customer_landing")',
        'latest = latest_customer_records(conforming(customer_landing, "customer_landing"))',
        _checks("test_a_customer_whose_latest_record_is_garbled_is_left_out"),
    ),
    Mutant(
        "pii · `user` no longer an identifier (preview masking, no_pii_columns)",
        "stedi_assets/pii.py",
        '"email", "user", "phone"',
        '"email", "phone"',
        _checks(
            "test_the_preview_masks_every_direct_identifier_of_every_table", "accelerometer_trusted"
        ),
    ),
)


def repository_files() -> list[str]:
    """The working tree's files as git sees them (tracked and untracked, not ignored)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        check=True,
        capture_output=True,
    ).stdout.decode()
    return [f for f in listed.split("\0") if f and (REPO / f).is_file()]


def copy_repository(files: list[str]) -> Path:
    copy = Path(tempfile.mkdtemp(prefix="stedi-mutant-"))
    for name in files:
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, copy / name)
    return copy


def apply(mutant: Mutant, copy: Path) -> None:
    path = copy / mutant.file
    text = path.read_text()
    found = text.count(mutant.original)
    if found != 1:
        raise ValueError(f"{mutant.name}: original text found {found} times in {mutant.file}")
    path.write_text(text.replace(mutant.original, mutant.replacement))


def run_tests(copy: Path, tests: tuple[str, ...], *, stop_at_first: bool) -> tuple[int, str]:
    """pytest on the copy (imports from the copy, not from the working tree)."""
    env = {
        **os.environ,
        "PYTHONPATH": str(copy),
        "PYSPARK_PYTHON": sys.executable,
        "SPARK_LOCAL_IP": os.environ.get("SPARK_LOCAL_IP", "127.0.0.1"),
        # The copy lives elsewhere: the default ../shared/reference-data is the original's.
        "STEDI_REFERENCE_DATA": os.environ.get(
            "STEDI_REFERENCE_DATA", str(REPO.parent / "shared" / "reference-data")
        ),
    }
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--no-header"]
    if stop_at_first:
        command.append("-x")
    done = subprocess.run(
        [*command, *tests], cwd=copy, env=env, capture_output=True, text=True, check=False
    )
    return done.returncode, done.stdout + done.stderr


def imports_from(copy: Path) -> str:
    code = "import stedi_assets; print(stedi_assets.__file__)"
    env = {**os.environ, "PYTHONPATH": str(copy)}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=copy, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="only the mutants whose name contains this text")
    parser.add_argument("--list", action="store_true", help="list the mutants and their tests")
    parser.add_argument(
        "--no-baseline", action="store_true", help="skip running the named tests unmutated"
    )
    args = parser.parse_args()
    # Stopped with SIGTERM, the temporary copy is still removed (``finally`` runs on exit).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    mutants = [m for m in MUTANTS if not args.only or args.only.lower() in m.name.lower()]
    if args.list:
        for mutant in mutants:
            print(f"{mutant.name}\n  {mutant.file}\n  " + "\n  ".join(mutant.tests))
        return 0
    files = repository_files()
    started = time.monotonic()

    if not args.no_baseline:
        copy = copy_repository(files)
        try:
            where = imports_from(copy)
            if not where.startswith(str(copy)):
                print(f"stedi_assets imports from {where}, not from the copy {copy}")
                return 2
            tests = tuple(dict.fromkeys(t for m in mutants for t in m.tests))
            code, output = run_tests(copy, tests, stop_at_first=False)
        finally:
            shutil.rmtree(copy, ignore_errors=True)
        print(f"baseline: {len(tests)} tests on the unmutated copy, exit {code}", flush=True)
        if code != 0:
            print(output[-4000:])
            print("the named tests must pass unmutated first")
            return 2

    results: list[tuple[Mutant, str, float]] = []
    for mutant in mutants:
        copy = copy_repository(files)
        began = time.monotonic()
        try:
            apply(mutant, copy)
            code, output = run_tests(copy, mutant.tests, stop_at_first=True)
        finally:
            shutil.rmtree(copy, ignore_errors=True)
        # pytest: 1 = tests failed (caught); 0 = all passed (survived); other = no verdict.
        verdict = {0: "SURVIVED", 1: "caught"}.get(code, f"ERROR (pytest exit {code})")
        seconds = time.monotonic() - began
        results.append((mutant, verdict, seconds))
        print(f"{verdict:<10} {seconds:5.1f}s  {mutant.name}", flush=True)
        if code not in (0, 1):
            print(output[-4000:])

    bad = [m for m, verdict, _ in results if verdict != "caught"]
    total = time.monotonic() - started
    print(
        f"\n{len(results) - len(bad)} of {len(results)} mutants caught in {total:.0f} s"
        + (f"; not caught: {', '.join(m.name for m in bad)}" if bad else "")
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
