"""A deterministic generator of a small STEDI landing zone (standard library only).

The records have the shapes of the public Udacity STEDI starter data: the same field names,
key order, JSON types and line formatting (customer lines use ``", "``/``": "`` separators,
reading lines are compact). Layout below the lake root::

    customer/landing/<first day>/customer-<ms>.json      every customer's registration record,
                                                         exported before the first reading
    customer/landing/<last day>/customer-<ms>.json       later updates (consent given or
                                                         withdrawn), exported at the end
    accelerometer/landing/<day>/accelerometer-<ms>.json  phone readings of that UTC day
    step_trainer/landing/<day>/step_trainer-<ms>.json    device readings of that UTC day

``<ms>`` is the epoch-millisecond upload time. With ``days=1`` both customer files share the
first day's folder; the update file always has the later name.

The landing zone deliberately carries the defects of a real one, all present for
``customers >= 12`` (see ``_plan_roles`` and ``generate_landing``):

1. about half of the customers never agree to research (consent fields absent, not null);
2. some consenting customers used the app before they consented (readings on both sides of
   ``shareWithResearchAsOfDate``, which arrives in the later update file);
3. one (user, timestamp) often has several accelerometer rows with different x/y/z;
4. one accelerometer file and one step-trainer file are uploaded twice, byte-identical,
   under a different name in the same day folder;
5. a few consenting customers with accelerometer data share one device serial number;
6. one customer consents at registration and withdraws in the later update file.

Step-trainer readings happen at exactly the millisecond timestamps of some of the owning
customer's accelerometer readings, so a join on timestamp (and serial) finds pairs.
"""

import datetime
import itertools
import json
import random
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MS_PER_SECOND = 1_000
MS_PER_MINUTE = 60 * MS_PER_SECOND
MS_PER_HOUR = 60 * MS_PER_MINUTE
MS_PER_DAY = 24 * MS_PER_HOUR
EPOCH = datetime.date(1970, 1, 1)

# The reference data has one phone number for everybody.
PHONE = "8015551212"

CUSTOMER_KEYS: tuple[str, ...] = (
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
ACCELEROMETER_KEYS: tuple[str, ...] = ("user", "timestamp", "x", "y", "z")
STEP_TRAINER_KEYS: tuple[str, ...] = ("sensorReadingTime", "serialNumber", "distanceFromObject")
ENTITIES: tuple[str, ...] = ("customer", "accelerometer", "step_trainer")

_FIRST_NAMES: tuple[str, ...] = (
    "Ada", "Ben", "Chen", "Dana", "Edward", "Fatima", "Grace", "Hiro", "Ines", "Jamal",
    "Kofi", "Lena", "Mateo", "Nadia", "Omar", "Priya", "Quinn", "Rosa", "Santosh", "Tariq",
    "Uma", "Victor", "Wendy", "Xavier", "Yara", "Zoe",
)  # fmt: skip
_LAST_NAMES: tuple[str, ...] = (
    "Abara", "Baker", "Clayton", "Dorsey", "Evans", "Fischer", "Garcia", "Hansen", "Ito",
    "Jones", "Khatib", "Lopez", "Mwangi", "Nguyen", "Okafor", "Petrov", "Quist", "Rossi",
    "Staples", "Tanaka", "Usman", "Varga", "Wu", "Xu", "Young", "Zeller",
)  # fmt: skip
# Like the reference data: every birthday is 1 January and a few years are impossible.
_ODD_BIRTH_YEARS: tuple[int, ...] = (1111, 1323, 1399, 1900)

# The reference x/y/z values are -1.0, 0.0 or 1.0; rows sharing a timestamp differ.
_AXIS_TRIPLES: tuple[tuple[float, float, float], ...] = tuple(
    itertools.product((-1.0, 0.0, 1.0), repeat=3)
)
# Rows per (user, timestamp): mostly 3 like the reference data, up to 6.
_ROWS_PER_TIMESTAMP: tuple[int, ...] = (1, 2, 3, 4, 5, 6)
_ROWS_PER_TIMESTAMP_WEIGHTS: tuple[int, ...] = (5, 20, 65, 5, 3, 2)

# Small files, like the many small uploads of a real landing zone.
_ACCELEROMETER_CUSTOMERS_PER_FILE = 8
_STEP_TRAINER_CUSTOMERS_PER_FILE = 15

_URI_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")

# Roles of customers; a role fixes consent history and whether the customer has readings.
_SHARED = "shared_serial"  # consents at registration, shares a serial with other _SHARED
_LATE = "late_consent"  # readings before and after consent given in the update file
_CONSENT = "consent"  # consents at registration, unique serial, readings after consent
_CONSENT_IDLE = "consent_idle"  # consents but never uses the app
_WITHDRAWN = "withdrawn"  # consents at registration, withdraws in the update file
_DECLINED = "declined"  # never consents to research, has readings
_DECLINED_IDLE = "declined_idle"  # never consents and never uses the app
_IDLE_ROLES = (_CONSENT_IDLE, _DECLINED_IDLE)


@dataclass(frozen=True)
class LandingFile:
    """One landing-zone file: its entity, its path below the lake root and its JSON lines."""

    entity: str  # "customer" | "accelerometer" | "step_trainer"
    relative_path: str  # e.g. "accelerometer/landing/2022-06-18/accelerometer-1655510400000.json"
    lines: tuple[str, ...]  # JSON-lines records, no trailing newline in each element


@dataclass(frozen=True)
class SimulationSummary:
    """What a set of landing files contains, for printing and for tests."""

    files: int
    customers: int  # distinct e-mails
    consenting_customers: int  # latest record carries shareWithResearchAsOfDate
    accelerometer_rows: int  # rows written, duplicates included
    step_trainer_rows: int
    days: tuple[str, ...]  # ISO dates (UTC) that have readings


@dataclass
class _Customer:
    """A simulated customer and the plan of their consent history and app sessions."""

    name: str
    email: str
    birth_day: str
    serial: str
    registration: int
    shares_public: bool
    shares_friends: bool
    role: str = _DECLINED
    # Epoch ms of the consent given (_LATE) or withdrawn (_WITHDRAWN) in the update file.
    change_at: int | None = None
    # One list of reading timestamps per app session.
    sessions: list[list[int]] = field(default_factory=list)


def generate_landing(
    customers: int = 40,
    days: int = 3,
    seed: int = 7,
    start: datetime.date = datetime.date(2022, 6, 18),
) -> list[LandingFile]:
    """A landing zone of ``customers`` customers with readings on ``days`` UTC days from
    ``start``. The same arguments always give byte-identical files."""
    if customers < 1:
        raise ValueError(f"customers must be at least 1, got {customers}")
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    rng = random.Random(seed)
    # Whole days since the epoch keep the arithmetic exact (no float, no local time zone).
    first_day = (datetime.date(start.year, start.month, start.day) - EPOCH).days * MS_PER_DAY
    day_starts = [first_day + d * MS_PER_DAY for d in range(days)]

    people = _make_customers(rng, customers, first_day)
    roles = _plan_roles(customers)
    rng.shuffle(roles)  # so that a role does not go with a position in the files
    for person, role in zip(people, roles, strict=True):
        person.role = role
    shared = [p for p in people if p.role == _SHARED]
    for person in shared[1:]:  # defect 5: one serial number for several devices
        person.serial = shared[0].serial

    readers = [p for p in people if p.role not in _IDLE_ROLES]
    active_days = _plan_active_days(rng, readers, days)
    for person, person_days in zip(readers, active_days, strict=True):
        _plan_sessions(rng, person, person_days, day_starts)

    files = _customer_files(rng, people, day_starts)
    accelerometer = _reading_files(
        rng, "accelerometer", readers, day_starts, _ACCELEROMETER_CUSTOMERS_PER_FILE
    )
    step_trainer = _reading_files(
        rng, "step_trainer", readers, day_starts, _STEP_TRAINER_CUSTOMERS_PER_FILE
    )
    # Defect 4: a re-upload; prefer a file with rows that survive the consent filter so the
    # duplicate matters downstream.
    consenting = [p for p in readers if p.role in (_SHARED, _LATE, _CONSENT)]
    files.extend(_with_reupload(rng, accelerometer, [p.email for p in consenting]))
    files.extend(_with_reupload(rng, step_trainer, [p.serial for p in consenting]))
    return files


def summarize(files: Sequence[LandingFile]) -> SimulationSummary:
    """Counts customers, consent, rows and reading days in ``files``. A customer's latest
    record (highest lastUpdateDate, later file on a tie) decides their consent."""
    latest: dict[str, dict[str, Any]] = {}
    accelerometer_rows = 0
    step_trainer_rows = 0
    reading_days: set[str] = set()
    for landing_file in files:
        records = [json.loads(line) for line in landing_file.lines]
        if landing_file.entity == "customer":
            for record in records:
                known = latest.get(record["email"])
                if known is None or record["lastUpdateDate"] >= known["lastUpdateDate"]:
                    latest[record["email"]] = record
        elif landing_file.entity == "accelerometer":
            accelerometer_rows += len(records)
            reading_days.update(_iso_day(r["timestamp"]) for r in records)
        elif landing_file.entity == "step_trainer":
            step_trainer_rows += len(records)
            reading_days.update(_iso_day(r["sensorReadingTime"]) for r in records)
        else:
            raise ValueError(f"unknown entity {landing_file.entity!r}; expected one of {ENTITIES}")
    return SimulationSummary(
        files=len(files),
        customers=len(latest),
        consenting_customers=sum("shareWithResearchAsOfDate" in r for r in latest.values()),
        accelerometer_rows=accelerometer_rows,
        step_trainer_rows=step_trainer_rows,
        days=tuple(sorted(reading_days)),
    )


def write_landing(lake: str, files: Sequence[LandingFile]) -> None:
    """Writes ``files`` below ``lake``, a local directory or an ``s3://bucket/prefix`` URI,
    creating folders and replacing files of the same name (other files are left alone). Each
    line ends with ``\\n``. Every path is checked before anything is written."""
    relative_paths = [_relative_path(landing_file) for landing_file in files]
    if lake.startswith(("s3://", "s3a://")):
        # Imported here: only an S3 upload needs boto3 (through dagster-aws); generating and
        # writing locally stays standard library only.
        from stedi_assets.storage.s3 import upload_objects

        upload_objects(
            lake,
            [(p.as_posix(), _landing_bytes(f)) for p, f in zip(relative_paths, files, strict=True)],
        )
        return
    if _URI_SCHEME.match(lake):
        raise ValueError(
            f"write_landing writes to a local directory or to s3://bucket/prefix; {lake!r} is "
            "another kind of URI."
        )
    root = Path(lake)
    for relative, landing_file in zip(relative_paths, files, strict=True):
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        # Bytes, not text mode, so that they are the same on every platform.
        target.write_bytes(_landing_bytes(landing_file))


def _relative_path(landing_file: LandingFile) -> Path:
    relative = Path(landing_file.relative_path)
    if relative.is_absolute() or ".." in relative.parts:
        raise ValueError(f"{landing_file.relative_path!r} is not a path below the lake")
    return relative


def _landing_bytes(landing_file: LandingFile) -> bytes:
    return "".join(line + "\n" for line in landing_file.lines).encode("utf-8")


def _iso_day(epoch_ms: int) -> str:
    return (EPOCH + datetime.timedelta(days=epoch_ms // MS_PER_DAY)).isoformat()


def _plan_roles(count: int) -> list[str]:
    """The roles of ``count`` customers, grouped; the caller shuffles them. Each defect's
    role gets its minimum (2 shared serials, 2 late consents, 1 withdrawal) once there are
    enough customers, and at least one plain consenting customer remains."""
    declining = (count * 9 + 10) // 20  # about 45 % never (or no longer) consent: defect 1
    consenting = count - declining
    shared = max(2, min(4, count // 12)) if consenting >= 4 else 0
    late = min(max(2, consenting // 5), max(0, consenting - shared - 1))
    consent_idle = 1 if count >= 20 else 0
    withdrawn = 1 if declining >= 2 else 0
    declined_idle = 1 if count >= 20 else 0
    return (
        [_SHARED] * shared
        + [_LATE] * late
        + [_CONSENT_IDLE] * consent_idle
        + [_CONSENT] * (consenting - shared - late - consent_idle)
        + [_WITHDRAWN] * withdrawn
        + [_DECLINED_IDLE] * declined_idle
        + [_DECLINED] * (declining - withdrawn - declined_idle)
    )


def _make_customers(rng: random.Random, count: int, first_day: int) -> list[_Customer]:
    """``count`` customers with unique e-mails, registered in the 30 days before the first day."""
    names = [(first, last) for first in _FIRST_NAMES for last in _LAST_NAMES]
    rng.shuffle(names)
    people = []
    for i in range(count):
        first, last = names[i % len(names)]
        # More customers than name pairs: a number keeps the e-mail unique.
        suffix = "" if i < len(names) else str(i // len(names) + 1)
        odd_year = rng.random() < 0.1
        year = rng.choice(_ODD_BIRTH_YEARS) if odd_year else rng.randint(1935, 2006)
        people.append(
            _Customer(
                name=f"{first} {last}",
                email=f"{first}.{last}{suffix}@test.com",
                birth_day=f"{year:04d}-01-01",
                serial=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                registration=first_day - rng.randint(MS_PER_HOUR, 30 * MS_PER_DAY),
                shares_public=rng.random() < 0.5,
                shares_friends=rng.random() < 0.5,
            )
        )
    return people


def _plan_active_days(rng: random.Random, readers: list[_Customer], days: int) -> list[list[int]]:
    """Which days each reader uses the app: random, but every reader has a day and every day
    has at least three readers (or all of them). The withdrawing customer uses the app on
    the last day so that the withdrawal falls between their sessions."""
    active = [[d for d in range(days) if rng.random() < 0.4] for _ in readers]
    for i, person in enumerate(readers):
        if person.role == _WITHDRAWN and days - 1 not in active[i]:
            active[i].append(days - 1)
        if not active[i]:
            active[i].append(rng.randrange(days))
    wanted = min(3, len(readers))
    for day in range(days):
        idle = [i for i in range(len(readers)) if day not in active[i]]
        while len(readers) - len(idle) < wanted:
            active[idle.pop(rng.randrange(len(idle)))].append(day)
    return [sorted(a) for a in active]


def _plan_sessions(
    rng: random.Random, person: _Customer, active_days: list[int], day_starts: list[int]
) -> None:
    """One session per active day; a customer whose consent changes gets a morning and an
    afternoon session on the day of the change with the change in between (defects 2, 6)."""
    interval = rng.randint(2_500, 4_000)  # per device, like the reference data
    change_day = active_days[-1] if person.role == _WITHDRAWN else active_days[0]
    for day in active_days:
        day_start = day_starts[day]
        if person.role in (_LATE, _WITHDRAWN) and day == change_day:
            morning = _session(
                rng, day_start + rng.randint(6 * MS_PER_HOUR, 10 * MS_PER_HOUR), interval
            )
            afternoon = _session(
                rng, day_start + rng.randint(14 * MS_PER_HOUR, 19 * MS_PER_HOUR), interval
            )
            person.change_at = rng.randint(
                morning[-1] + MS_PER_MINUTE, afternoon[0] - MS_PER_MINUTE
            )
            person.sessions.extend([morning, afternoon])
        else:
            begin = day_start + rng.randint(6 * MS_PER_HOUR, 19 * MS_PER_HOUR)
            person.sessions.append(_session(rng, begin, interval))


def _session(rng: random.Random, begin: int, interval: int) -> list[int]:
    """The reading timestamps of one session: 12 to 24 readings, evenly spaced."""
    return [begin + j * interval for j in range(rng.randint(12, 24))]


def _customer_record(
    person: _Customer,
    last_update: int,
    research: int | None,
    public: int | None,
    friends: int | None,
) -> str:
    """One customer line; a consent field is left out (not null) when there is no consent."""
    record: dict[str, object] = {
        "customerName": person.name,
        "email": person.email,
        "phone": PHONE,
        "birthDay": person.birth_day,
        "serialNumber": person.serial,
        "registrationDate": person.registration,
        "lastUpdateDate": last_update,
    }
    consents = {
        "shareWithResearchAsOfDate": research,
        "shareWithPublicAsOfDate": public,
        "shareWithFriendsAsOfDate": friends,
    }
    record.update({key: value for key, value in consents.items() if value is not None})
    return json.dumps(record)  # default separators, like the reference customer file


def _customer_files(
    rng: random.Random, people: list[_Customer], day_starts: list[int]
) -> list[LandingFile]:
    """The registration export (first day, before any reading) and the update export (end of
    the last day) with the consents given late and the withdrawal."""
    registration_lines = []
    update_lines = []
    for person in people:
        registered = person.registration
        public = registered if person.shares_public else None
        friends = registered if person.shares_friends else None
        # Research consent at registration, except for those who never or only later consent.
        research = None if person.role in (_LATE, _DECLINED, _DECLINED_IDLE) else registered
        registration_lines.append(_customer_record(person, registered, research, public, friends))
        if person.role == _LATE and person.change_at is not None:
            # Defect 2: the consent arrives after the customer's first readings.
            update_lines.append(
                _customer_record(person, person.change_at, person.change_at, public, friends)
            )
        elif person.role == _WITHDRAWN and person.change_at is not None:
            # Defect 6: a later record of the same e-mail without research consent.
            update_lines.append(_customer_record(person, person.change_at, None, public, friends))
    exported = day_starts[0] + rng.randint(0, 5 * MS_PER_HOUR)  # before the first session
    files = [_landing_file("customer", day_starts[0], exported, registration_lines)]
    if update_lines:
        # After every session and every change (those end before 20:00 UTC).
        exported = day_starts[-1] + 23 * MS_PER_HOUR + rng.randint(0, MS_PER_HOUR - 1)
        files.append(_landing_file("customer", day_starts[-1], exported, update_lines))
    return files


def _reading_files(
    rng: random.Random,
    entity: str,
    readers: list[_Customer],
    day_starts: list[int],
    customers_per_file: int,
) -> list[LandingFile]:
    """Per day, the readings of up to ``customers_per_file`` customers per file, uploaded
    shortly after the file's last reading."""
    files = []
    for day_start in day_starts:
        day_end = day_start + MS_PER_DAY
        blocks = []  # (last timestamp, lines) per customer with a session this day
        for person in readers:
            timestamps = [t for s in person.sessions for t in s if day_start <= t < day_end]
            if not timestamps:
                continue
            if entity == "accelerometer":
                lines = _accelerometer_lines(rng, person, timestamps)
            else:
                lines = _step_trainer_lines(rng, person, timestamps)
            blocks.append((max(timestamps), lines))
        used: set[int] = set()
        for i in range(0, len(blocks), customers_per_file):
            chunk = blocks[i : i + customers_per_file]
            uploaded = max(last for last, _ in chunk) + rng.randint(
                MS_PER_SECOND, 2 * MS_PER_MINUTE
            )
            while uploaded in used:  # names must not collide within a day folder
                uploaded += 1
            used.add(uploaded)
            lines = [line for _, block in chunk for line in block]
            files.append(_landing_file(entity, day_start, uploaded, lines))
    return files


def _accelerometer_lines(rng: random.Random, person: _Customer, timestamps: list[int]) -> list[str]:
    """Rows per timestamp in shuffled order (the reference files are not sorted); several
    rows of one timestamp carry different x/y/z (defect 3)."""
    order = list(timestamps)
    rng.shuffle(order)
    lines = []
    for timestamp in order:
        count = rng.choices(_ROWS_PER_TIMESTAMP, weights=_ROWS_PER_TIMESTAMP_WEIGHTS)[0]
        for x, y, z in rng.sample(_AXIS_TRIPLES, count):
            row = {"user": person.email, "timestamp": timestamp, "x": x, "y": y, "z": z}
            lines.append(json.dumps(row, separators=(",", ":")))
    return lines


def _step_trainer_lines(rng: random.Random, person: _Customer, timestamps: list[int]) -> list[str]:
    """A device reading at about nine in ten of the phone's timestamps, at the same millisecond
    (the device and the phone record together), never none."""
    chosen = [t for t in timestamps if rng.random() < 0.9] or timestamps[:1]
    rng.shuffle(chosen)
    return [
        json.dumps(
            {
                "sensorReadingTime": timestamp,
                "serialNumber": person.serial,
                "distanceFromObject": rng.randint(200, 300),
            },
            separators=(",", ":"),
        )
        for timestamp in chosen
    ]


def _with_reupload(
    rng: random.Random, files: list[LandingFile], preferred: list[str]
) -> list[LandingFile]:
    """``files`` plus one of them again under a later name in the same folder (defect 4).
    The copy is taken from files that mention one of ``preferred`` when there are any."""
    candidates = [f for f in files if any(key in line for line in f.lines for key in preferred)]
    original = rng.choice(candidates or files)
    folder, name = original.relative_path.rsplit("/", 1)
    uploaded = int(name.rsplit("-", 1)[1].removesuffix(".json"))
    taken = {f.relative_path for f in files}
    uploaded += rng.randint(10 * MS_PER_MINUTE, 2 * MS_PER_HOUR)
    while f"{folder}/{original.entity}-{uploaded}.json" in taken:
        uploaded += 1
    copy = LandingFile(
        original.entity, f"{folder}/{original.entity}-{uploaded}.json", original.lines
    )
    return sorted([*files, copy], key=lambda f: f.relative_path)


def _landing_file(entity: str, day_start: int, uploaded: int, lines: list[str]) -> LandingFile:
    day = _iso_day(day_start)
    return LandingFile(entity, f"{entity}/landing/{day}/{entity}-{uploaded}.json", tuple(lines))
