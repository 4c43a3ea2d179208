"""``stedi provision``: the AWS resources an s3:// lakehouse needs, created idempotently.

What it manages, for ``--lake s3://<bucket>/<prefix>`` (a prefix is required):

* the bucket: private (ACLs disabled, every public access block on), default encryption on
  (SSE-S3, unless the bucket already uses a KMS key, which is kept), a bucket policy statement
  that denies plain HTTP, and lifecycle rules for the lake prefix: incomplete multipart uploads
  and Athena results expire by the erasure deadline, and so do old object versions when the
  bucket keeps them (versioning is never turned on);
* two Glue databases: ``STEDI_DATABASE`` (default ``stedi``) for the research tables and
  ``<database>_quarantine`` for the rejected landing lines, which are kept apart;
* the CloudWatch log group Glue jobs of this lakehouse log to (``/aws-glue/jobs/stedi``);
* an IAM role for Glue jobs (trusting ``glue.amazonaws.com`` of this account only) with one
  inline, least-privilege policy: read the lake, write only the table zones (never landing),
  Glue on the two databases only, logs in that log group only, and the bucket's KMS key if it
  has one. No ``"*"`` action and no ``"*"`` resource;
* a read-only IAM role for researchers (assumable by principals of this account that IAM lets
  assume it): the trusted and curated tables, their Glue metadata and Athena, nothing of
  landing or the quarantine.

Every run first reads what exists and computes a plan (the list of changes); ``--dry-run``
prints it and touches nothing; otherwise each change is applied in order. A second run finds
nothing to change. Clients come from dagster-aws resources configured from the environment
(region and credentials from the AWS chain, ``AWS_ENDPOINT_URL`` for a stand-in like moto).
"""

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from botocore.exceptions import ClientError

from stedi_assets.aws.athena import DEFAULT_WORKGROUP, RESULTS_FOLDER
from stedi_assets.aws.clients import AwsClientsResource, aws_clients
from stedi_assets.storage.layout import QUARANTINE_DATABASE_SUFFIX, TABLES, Zone
from stedi_assets.storage.s3 import aws_region, s3_resource, split_s3_uri

DEFAULT_ROLE = "stedi-glue-job"
RESEARCH_ROLE = "stedi-research-reader"
DEFAULT_LOG_GROUP = "/aws-glue/jobs/stedi"
LOG_RETENTION_DAYS = 30
ENCRYPTION = {"SSEAlgorithm": "AES256"}  # SSE-S3: encryption at rest with no key to manage
KMS_ALGORITHMS = ("aws:kms", "aws:kms:dsse")
PUBLIC_ACCESS_BLOCK = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}
OWNERSHIP = {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}  # ACLs disabled
DENY_PLAIN_HTTP_SID = "DenyPlainHttp"

# The erasure deadline: the lakehouse physically deletes a withdrawn customer's rows, but a
# versioned bucket keeps every deleted or overwritten object as a noncurrent version. Those
# expire this many days after they become noncurrent. S3 counts from the next midnight UTC and
# removes expired objects asynchronously, so the bytes may outlive the deadline by a little.
ERASURE_DEADLINE_DAYS = 1
# Parts of an abandoned multipart upload are copies of table rows too (a killed run's data
# file); no write of this lakehouse takes a day.
ABORT_INCOMPLETE_UPLOADS_DAYS = ERASURE_DEADLINE_DAYS
# Athena results are copies of rows (a query over customer_trusted holds e-mails): they go by
# the same deadline; whoever wants a result keeps it elsewhere.
ATHENA_RESULTS_DAYS = ERASURE_DEADLINE_DAYS
# Researchers' Athena results, below the lake's results folder: operators' results (which may
# come from the quarantine) sit beside it, out of the research role's reach.
RESEARCH_RESULTS_FOLDER = f"{RESULTS_FOLDER}/research"
# Lifecycle rule IDs name the prefix (two lakes may share a bucket); IDs hold 255 characters.
MAX_PREFIX_LENGTH = 200

# What a run does in the catalog: Iceberg's Glue catalog reads a table and commits a new
# metadata location with UpdateTable (Glue's VersionId makes that an atomic compare-and-swap),
# creates tables and the databases the first time; the landing JSON tables are created and
# updated from sql/. No deletes, no partitions (Iceberg keeps its own), no other databases.
GLUE_ACTIONS = [
    "glue:GetDatabase",
    "glue:CreateDatabase",
    "glue:GetTable",
    "glue:GetTables",
    "glue:CreateTable",
    "glue:UpdateTable",
]
# What reading tables through Glue takes (Athena, Spark, pyiceberg): metadata only.
GLUE_READ_ACTIONS = [
    "glue:GetDatabase",
    "glue:GetDatabases",
    "glue:GetTable",
    "glue:GetTables",
    "glue:GetPartition",
    "glue:GetPartitions",
]
# Writing the tables: Iceberg's S3FileIO writes new data and metadata files (multipart for
# large ones); expiring snapshots, removing orphan files and erasure delete them.
S3_WRITE_ACTIONS = [
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
]
# What running a query in Athena and reading its results takes, on the one workgroup.
ATHENA_ACTIONS = [
    "athena:StartQueryExecution",
    "athena:GetQueryExecution",
    "athena:GetQueryResults",
    "athena:StopQueryExecution",
    "athena:GetWorkGroup",
]


def check_prefix(bucket: str, prefix: str) -> None:
    """Refuses a lake at the bucket root (its roles would get the whole bucket) and a prefix
    that IAM would read as a pattern (``*``, ``?``) or a policy variable (``${…}``), or that a
    URI parser would cut short (``?``, ``#``)."""
    if not prefix:
        raise ValueError(
            f"provision needs a lake prefix: s3://{bucket}/prefix, not s3://{bucket} "
            "(a lake at the bucket root would give its roles the whole bucket)"
        )
    wild = sorted({c for c in prefix if c in "*?$#"})
    if wild:
        raise ValueError(
            f"provision refuses the lake prefix {prefix!r}: {' '.join(wild)} would be a "
            "wildcard or a variable in IAM and bucket policies, or cut the URI short (use "
            "letters, digits, - _ . /)"
        )
    if len(prefix) > MAX_PREFIX_LENGTH:
        raise ValueError(
            f"provision needs a lake prefix of at most {MAX_PREFIX_LENGTH} characters "
            f"(lifecycle rule IDs name it and hold 255), not {len(prefix)}"
        )


@dataclass(frozen=True)
class Target:
    """Everything provisioning needs to know about one lake."""

    bucket: str
    prefix: str
    database: str
    region: str
    account: str
    partition: str = "aws"
    role_name: str = DEFAULT_ROLE
    log_group: str = DEFAULT_LOG_GROUP
    research_role_name: str = RESEARCH_ROLE

    def __post_init__(self) -> None:
        check_prefix(self.bucket, self.prefix)

    @property
    def lake(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    @property
    def quarantine_database(self) -> str:
        return f"{self.database}{QUARANTINE_DATABASE_SUFFIX}"

    @property
    def bucket_arn(self) -> str:
        return f"arn:{self.partition}:s3:::{self.bucket}"

    def objects(self, *zones: Zone) -> list[str]:
        """The object ARNs of the tables in ``zones``, one per table folder. Spelled out from
        the layout because IAM's ``*`` also matches ``/``: ``prefix/*/trusted/*`` would match
        ``prefix/customer/landing/trusted/x`` too."""
        folders = dict.fromkeys(s.relative_path for s in TABLES.values() if s.zone in zones)
        return [f"{self.bucket_arn}/{self.prefix}/{folder}/*" for folder in folders]

    def role_arn(self, name: str) -> str:
        return f"arn:{self.partition}:iam::{self.account}:role/{name}"


@dataclass(frozen=True)
class Change:
    """One step of the plan: what it does (for people) and how (``apply``)."""

    resource: str
    description: str
    apply: Callable[[], Any] = field(compare=False, repr=False)

    def __str__(self) -> str:
        return f"{self.resource}: {self.description}"


# --- the policy documents ------------------------------------------------------------------
def glue_trust_policy(target: Target) -> dict[str, Any]:
    """Glue may assume the role only for jobs of this account (the confused-deputy guard)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "glue.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": target.account}},
            }
        ],
    }


def research_trust_policy(target: Target) -> dict[str, Any]:
    """The account delegates: a principal of the account whose own IAM policy allows
    ``sts:AssumeRole`` on this role may assume it."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:{target.partition}:iam::{target.account}:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }


def _list_bucket(target: Target, sid: str, prefixes: list[str]) -> dict[str, Any]:
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Action": ["s3:ListBucket"],
        "Resource": [target.bucket_arn],
        "Condition": {"StringLike": {"s3:prefix": prefixes}},
    }


def _bucket_region(target: Target) -> dict[str, Any]:
    return {
        "Sid": "BucketRegion",
        "Effect": "Allow",
        "Action": ["s3:GetBucketLocation"],
        "Resource": [target.bucket_arn],
    }


def _glue_arns(target: Target, *databases: str) -> list[str]:
    """Glue authorizes the catalog and the database as well as the table."""
    glue = f"arn:{target.partition}:glue:{target.region}:{target.account}"
    arns = [f"{glue}:catalog"]
    for database in databases:
        arns += [f"{glue}:database/{database}", f"{glue}:table/{database}/*"]
    return arns


def glue_job_policy(target: Target, kms_key: str | None = None) -> dict[str, Any]:
    """The job role's inline policy: least privilege for one lake, its two databases and one
    log group; ``kms_key`` is the ARN of the bucket's default KMS key, if it has one."""
    p, region, account, lake = target.partition, target.region, target.account, target.prefix
    log_group = f"arn:{p}:logs:{region}:{account}:log-group:{target.log_group}"
    statements: list[dict[str, Any]] = [
        _list_bucket(target, "ListTheLakeOnly", [lake, f"{lake}/*"]),
        _bucket_region(target),
        {
            # Landing and the tables. The whole prefix, because S3A probes paths under the
            # lake with HEAD (a table folder, the legacy _staging folder), which S3 answers
            # 403 rather than 404 without s3:GetObject, and S3A fails on a 403.
            "Sid": "ReadTheLake",
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": [f"{target.bucket_arn}/{lake}/*"],
        },
        {
            "Sid": "WriteTheTablesOnly",
            "Effect": "Allow",
            "Action": S3_WRITE_ACTIONS,
            "Resource": target.objects("trusted", "curated", "quarantine"),
        },
        {
            # Devices write landing; the role that builds the tables never changes its input,
            # even if a broader policy is attached to the role later.
            "Sid": "NeverWriteLanding",
            "Effect": "Deny",
            "Action": ["s3:PutObject", "s3:DeleteObject"],
            "Resource": [f"{target.bucket_arn}/{lake}/*/landing/*"],
        },
        {
            "Sid": "CatalogOfTheLake",
            "Effect": "Allow",
            "Action": GLUE_ACTIONS,
            "Resource": _glue_arns(target, target.database, target.quarantine_database),
        },
        {
            "Sid": "OwnLogGroup",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": [log_group, f"{log_group}:log-stream:*"],
        },
    ]
    if kms_key:
        statements.append(
            {
                # SSE-KMS: reading an object decrypts its data key, writing one generates a
                # data key (and multipart uploads decrypt it again for each part).
                "Sid": "TheBucketKey",
                "Effect": "Allow",
                "Action": ["kms:Decrypt", "kms:GenerateDataKey", "kms:Encrypt"],
                "Resource": [kms_key],
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


def research_reader_policy(target: Target, kms_key: str | None = None) -> dict[str, Any]:
    """The research role's inline policy: the trusted and curated tables (objects and Glue
    metadata) and Athena over them; nothing of landing or the quarantine."""
    p, region, account, lake = target.partition, target.region, target.account, target.prefix
    research = target.objects("trusted", "curated")
    folders = [arn.removeprefix(f"{target.bucket_arn}/").removesuffix("/*") for arn in research]
    results = f"{lake}/{RESEARCH_RESULTS_FOLDER}"
    statements: list[dict[str, Any]] = [
        _list_bucket(
            target,
            "ListResearchTablesOnly",
            [f for folder in [*folders, results] for f in (folder, f"{folder}/*")],
        ),
        _bucket_region(target),
        {
            "Sid": "ReadResearchTables",
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": research,
        },
        {
            # Athena writes each query's results with the caller's credentials, and
            # GetQueryResults reads them back the same way.
            "Sid": "OwnAthenaResults",
            "Effect": "Allow",
            "Action": [
                "s3:GetObject",
                "s3:PutObject",
                "s3:AbortMultipartUpload",
                "s3:ListMultipartUploadParts",
            ],
            "Resource": [f"{target.bucket_arn}/{results}/*"],
        },
        {
            "Sid": "AthenaQueries",
            "Effect": "Allow",
            "Action": ATHENA_ACTIONS,
            "Resource": [f"arn:{p}:athena:{region}:{account}:workgroup/{DEFAULT_WORKGROUP}"],
        },
        {
            # Landing tables are in this database too: their metadata, but not their files.
            "Sid": "ResearchCatalog",
            "Effect": "Allow",
            "Action": GLUE_READ_ACTIONS,
            "Resource": _glue_arns(target, target.database),
        },
        {
            # Explicit, so that a broader policy attached to the role later cannot open them.
            # A deny may over-match (IAM's * crosses /): it only ever takes away.
            "Sid": "NeverLandingOrQuarantineObjects",
            "Effect": "Deny",
            "Action": ["s3:*"],
            "Resource": [
                f"{target.bucket_arn}/{lake}/*/landing/*",
                f"{target.bucket_arn}/{lake}/*/quarantine/*",
            ],
        },
        {
            "Sid": "NeverTheQuarantineDatabase",
            "Effect": "Deny",
            "Action": ["glue:*"],
            "Resource": _glue_arns(target, target.quarantine_database)[1:],
        },
    ]
    if kms_key:
        statements.append(
            {
                # Decrypt to read the tables; GenerateDataKey to write Athena results.
                "Sid": "TheBucketKey",
                "Effect": "Allow",
                "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                "Resource": [kms_key],
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


def deny_plain_http(target: Target) -> dict[str, Any]:
    """The bucket policy statement refusing every request that does not come over TLS."""
    return {
        "Sid": DENY_PLAIN_HTTP_SID,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [target.bucket_arn, f"{target.bucket_arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def lifecycle_rules(target: Target, keeps_versions: bool) -> list[dict[str, Any]]:
    """This lake's lifecycle rules; ``keeps_versions``: the bucket's versioning is (or was) on."""
    lake = f"{target.prefix}/"
    rules: list[dict[str, Any]] = [
        {
            "ID": f"stedi {lake} abort-incomplete-uploads",
            "Status": "Enabled",
            "Filter": {"Prefix": lake},
            "AbortIncompleteMultipartUpload": {
                "DaysAfterInitiation": ABORT_INCOMPLETE_UPLOADS_DAYS
            },
        },
        {
            "ID": f"stedi {lake} expire-athena-results",
            "Status": "Enabled",
            "Filter": {"Prefix": f"{lake}{RESULTS_FOLDER}/"},
            "Expiration": {"Days": ATHENA_RESULTS_DAYS},
        },
    ]
    if keeps_versions:
        rules.append(
            {
                "ID": f"stedi {lake} expire-noncurrent-versions",
                "Status": "Enabled",
                "Filter": {"Prefix": lake},
                "NoncurrentVersionExpiration": {"NoncurrentDays": ERASURE_DEADLINE_DAYS},
                # A deleted object leaves a delete marker; once its old versions are gone, the
                # marker goes too.
                "Expiration": {"ExpiredObjectDeleteMarker": True},
            }
        )
    return rules


def kms_key_arn(target: Target, key_id: str) -> str:
    """A key ID as an ARN (the bucket's key is in the bucket's account and region)."""
    if key_id.startswith("arn:"):
        return key_id
    return f"arn:{target.partition}:kms:{target.region}:{target.account}:key/{key_id}"


def _is_alias(key_id: str) -> bool:
    return key_id.startswith("alias/") or (key_id.startswith("arn:") and ":alias/" in key_id)


def _days(days: int) -> str:
    return "1 day" if days == 1 else f"{days} days"


# --- reading what exists -------------------------------------------------------------------
def _code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


def _status(error: ClientError) -> int:
    return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _document(value: str | dict[str, Any]) -> dict[str, Any]:
    """IAM returns policy documents URL-encoded JSON (boto3 usually decodes them already)."""
    return json.loads(unquote(value)) if isinstance(value, str) else value


def _normalized(document: Any) -> Any:
    """Documents compare equal when they only differ in "x" versus ["x"] or in empty fields."""

    def norm(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: norm(v) for k, v in value.items() if v not in (None, {}, [])}
        if isinstance(value, list):
            items = [norm(v) for v in value]
            return items[0] if len(items) == 1 else items
        return value

    return norm(document)


def _statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    statements = policy.get("Statement", [])
    return [statements] if isinstance(statements, dict) else list(statements)


class Provisioner:
    """Compares what exists for one lake with what it needs, and makes the difference."""

    def __init__(self, target: Target, aws: AwsClientsResource | None = None) -> None:
        self.target = target
        self.aws = aws or aws_clients()
        self.s3 = s3_resource().get_client()
        self.glue = self.aws.client("glue")
        self.iam = self.aws.client("iam")
        self.logs = self.aws.client("logs")

    def plan(self) -> list[Change]:
        exists = self._bucket_exists()
        kms_key = self._kms_key() if exists else None
        target = self.target
        return [
            *self._bucket_changes(exists),
            *self._bucket_policy_changes(exists),
            *self._lifecycle_changes(exists),
            *self._database_changes(
                target.database, f"STEDI lakehouse tables of {target.lake} (research)"
            ),
            *self._database_changes(
                target.quarantine_database,
                f"STEDI quarantine of {target.lake}: landing lines that failed validation "
                "(not for research)",
            ),
            *self._log_group_changes(),
            *self._role_changes(
                target.role_name,
                glue_trust_policy(target),
                f"glue.amazonaws.com for jobs of account {target.account}",
                glue_job_policy(target, kms_key),
                f"S3 {target.lake} (read; write the table zones only), Glue databases "
                f"{target.database} and {target.quarantine_database}, logs {target.log_group}"
                + (f", KMS key {kms_key}" if kms_key else ""),
                f"Glue jobs of the STEDI lakehouse {target.lake}",
            ),
            *self._role_changes(
                target.research_role_name,
                research_trust_policy(target),
                f"principals of account {target.account} that IAM allows to assume it",
                research_reader_policy(target, kms_key),
                f"read-only: the trusted and curated tables of {target.lake} and Glue "
                f"database {target.database}, Athena workgroup {DEFAULT_WORKGROUP}"
                + (f", KMS key {kms_key}" if kms_key else ""),
                f"Researchers reading the STEDI lakehouse {target.lake}",
            ),
        ]

    # --- the bucket ---------------------------------------------------------------------
    def _bucket_exists(self) -> bool:
        bucket = self.target.bucket
        try:
            self.s3.head_bucket(Bucket=bucket)
            return True
        except ClientError as error:
            if _status(error) == 403:
                raise PermissionError(
                    f"bucket {bucket} exists but this account cannot use it (403); "
                    "bucket names are global: choose another"
                ) from error
            if _status(error) != 404:
                raise
            return False

    def _bucket_changes(self, exists: bool) -> list[Change]:
        bucket, region = self.target.bucket, self.target.region
        name = f"s3://{bucket}"
        changes = []
        if not exists:
            create: dict[str, Any] = {"Bucket": bucket}
            if region != "us-east-1":  # us-east-1 refuses an explicit location constraint
                create["CreateBucketConfiguration"] = {"LocationConstraint": region}
            changes.append(
                Change(name, f"create bucket in {region}", lambda: self.s3.create_bucket(**create))
            )
        if not exists or self._ownership() != OWNERSHIP["Rules"]:
            changes.append(
                Change(
                    name,
                    "disable ACLs (object ownership: bucket owner enforced)",
                    lambda: self.s3.put_bucket_ownership_controls(
                        Bucket=bucket, OwnershipControls=OWNERSHIP
                    ),
                )
            )
        if not exists or self._public_access_block() != PUBLIC_ACCESS_BLOCK:
            changes.append(
                Change(
                    name,
                    "block all public access",
                    lambda: self.s3.put_public_access_block(
                        Bucket=bucket, PublicAccessBlockConfiguration=PUBLIC_ACCESS_BLOCK
                    ),
                )
            )
        # Any default encryption is kept (SSE-S3 or a KMS key someone chose on purpose).
        if not exists or self._default_encryption() is None:
            changes.append(
                Change(
                    name,
                    "turn on default encryption (SSE-S3)",
                    lambda: self.s3.put_bucket_encryption(
                        Bucket=bucket,
                        ServerSideEncryptionConfiguration={
                            "Rules": [
                                {
                                    "ApplyServerSideEncryptionByDefault": ENCRYPTION,
                                    "BucketKeyEnabled": True,
                                }
                            ]
                        },
                    ),
                )
            )
        return changes

    def _ownership(self) -> list[dict[str, Any]] | None:
        try:
            controls = self.s3.get_bucket_ownership_controls(Bucket=self.target.bucket)
        except ClientError as error:
            if _code(error) == "OwnershipControlsNotFoundError":
                return None
            raise
        return controls["OwnershipControls"]["Rules"]

    def _public_access_block(self) -> dict[str, bool] | None:
        try:
            response = self.s3.get_public_access_block(Bucket=self.target.bucket)
        except ClientError as error:
            if _code(error) == "NoSuchPublicAccessBlockConfiguration":
                return None
            raise
        return response["PublicAccessBlockConfiguration"]

    def _default_encryption(self) -> dict[str, Any] | None:
        """The bucket's ``ApplyServerSideEncryptionByDefault``, or None."""
        try:
            response = self.s3.get_bucket_encryption(Bucket=self.target.bucket)
        except ClientError as error:
            if _code(error) == "ServerSideEncryptionConfigurationNotFoundError":
                return None
            raise
        rules = response["ServerSideEncryptionConfiguration"].get("Rules", [])
        defaults = [
            r["ApplyServerSideEncryptionByDefault"]
            for r in rules
            if r.get("ApplyServerSideEncryptionByDefault")
        ]
        return defaults[0] if defaults else None

    def _kms_key(self) -> str | None:
        """The ARN of the bucket's customer managed KMS key, or None (SSE-S3, or SSE-KMS with
        the AWS managed key ``aws/s3``, whose key policy already lets the account's principals
        use it through S3). An alias is resolved to its key: KMS authorizes the key's ARN."""
        default = self._default_encryption()
        if not default or default.get("SSEAlgorithm") not in KMS_ALGORITHMS:
            return None
        key_id = default.get("KMSMasterKeyID")
        if not key_id:
            return None
        if _is_alias(key_id):
            try:
                return self.aws.client("kms").describe_key(KeyId=key_id)["KeyMetadata"]["Arn"]
            except ClientError as error:
                raise PermissionError(
                    f"bucket {self.target.bucket} encrypts with KMS alias {key_id}, which "
                    f"provision cannot resolve to a key ({_code(error)}); it needs "
                    "kms:DescribeKey on that key"
                ) from error
        return kms_key_arn(self.target, key_id)

    def _bucket_policy_changes(self, exists: bool) -> list[Change]:
        """Our statement replaces only itself; every other statement of the policy stays."""
        statement = deny_plain_http(self.target)
        current = self._bucket_policy() if exists else None
        policy = current or {"Version": "2012-10-17"}
        others = [s for s in _statements(policy) if s.get("Sid") != DENY_PLAIN_HTTP_SID]
        ours = [s for s in _statements(policy) if s.get("Sid") == DENY_PLAIN_HTTP_SID]
        if [_normalized(s) for s in ours] == [_normalized(statement)]:
            return []
        merged = {**policy, "Statement": [*others, statement]}
        kept = f"; {len(others)} other statement(s) kept" if others else ""
        return [
            Change(
                f"s3://{self.target.bucket}",
                f"bucket policy: deny plain HTTP (statement {DENY_PLAIN_HTTP_SID}{kept})",
                lambda: self.s3.put_bucket_policy(
                    Bucket=self.target.bucket, Policy=json.dumps(merged)
                ),
            )
        ]

    def _bucket_policy(self) -> dict[str, Any] | None:
        try:
            response = self.s3.get_bucket_policy(Bucket=self.target.bucket)
        except ClientError as error:
            if _code(error) == "NoSuchBucketPolicy":
                return None
            raise
        return json.loads(response["Policy"])

    def _lifecycle_changes(self, exists: bool) -> list[Change]:
        """PutBucketLifecycleConfiguration replaces the whole configuration: read it, replace
        our rules by ID, keep everyone else's, write it all back."""
        target = self.target
        # Enabled, or Suspended: the versions kept before stay until they expire. A bucket
        # never versioned has no status.
        versioning = self._versioning_status() if exists else None
        wanted = lifecycle_rules(target, versioning in ("Enabled", "Suspended"))
        current, minimum_size = self._lifecycle() if exists else ([], None)
        by_id = {rule.get("ID"): rule for rule in current}
        stale = [r for r in wanted if _normalized(by_id.get(r["ID"])) != _normalized(r)]
        if not stale:
            return []
        replacing = {r["ID"]: r for r in stale}
        rules = [replacing.pop(r.get("ID"), r) for r in current] + list(replacing.values())
        request: dict[str, Any] = {
            "Bucket": target.bucket,
            "LifecycleConfiguration": {"Rules": rules},
        }
        if minimum_size:  # left out, S3 would reset it to its default
            request["TransitionDefaultMinimumObjectSize"] = minimum_size
        lake = f"{target.prefix}/"
        what = {
            "abort-incomplete-uploads": f"abort incomplete multipart uploads under {lake} "
            f"after {_days(ABORT_INCOMPLETE_UPLOADS_DAYS)}",
            "expire-athena-results": f"expire Athena results under {lake}{RESULTS_FOLDER}/ "
            f"after {_days(ATHENA_RESULTS_DAYS)}",
            "expire-noncurrent-versions": "the bucket keeps old versions (versioning "
            f"{versioning}): expire them under {lake} {_days(ERASURE_DEADLINE_DAYS)} after "
            "they become noncurrent (the erasure deadline), then their delete markers",
        }
        described = "; ".join(what[r["ID"].rsplit(" ", 1)[1]] for r in stale)
        others = len([r for r in current if r.get("ID") not in {w["ID"] for w in wanted}])
        kept = f" ({others} other rule(s) kept)" if others else ""
        return [
            Change(
                f"s3://{target.bucket}",
                f"lifecycle: {described}{kept}",
                lambda: self.s3.put_bucket_lifecycle_configuration(**request),
            )
        ]

    def _versioning_status(self) -> str | None:
        return self.s3.get_bucket_versioning(Bucket=self.target.bucket).get("Status")

    def _lifecycle(self) -> tuple[list[dict[str, Any]], str | None]:
        try:
            response = self.s3.get_bucket_lifecycle_configuration(Bucket=self.target.bucket)
        except ClientError as error:
            if _code(error) == "NoSuchLifecycleConfiguration":
                return [], None
            raise
        return response.get("Rules", []), response.get("TransitionDefaultMinimumObjectSize")

    # --- the Glue databases and the log group -------------------------------------------
    def _database_changes(self, database: str, description: str) -> list[Change]:
        try:
            self.glue.get_database(Name=database)
            return []
        except ClientError as error:
            if _code(error) != "EntityNotFoundException":
                raise
        return [
            Change(
                f"glue database {database}",
                "create",
                lambda: self.glue.create_database(
                    DatabaseInput={"Name": database, "Description": description}
                ),
            )
        ]

    def _log_group_changes(self) -> list[Change]:
        name = self.target.log_group
        groups = self.logs.describe_log_groups(logGroupNamePrefix=name).get("logGroups", [])
        group = next((g for g in groups if g["logGroupName"] == name), None)
        changes = []
        if group is None:
            changes.append(
                Change(
                    f"log group {name}",
                    "create",
                    lambda: self.logs.create_log_group(logGroupName=name),
                )
            )
        if group is None or group.get("retentionInDays") != LOG_RETENTION_DAYS:
            changes.append(
                Change(
                    f"log group {name}",
                    f"keep logs {LOG_RETENTION_DAYS} days",
                    lambda: self.logs.put_retention_policy(
                        logGroupName=name, retentionInDays=LOG_RETENTION_DAYS
                    ),
                )
            )
        return changes

    # --- the IAM roles ------------------------------------------------------------------
    def _role_changes(
        self,
        role: str,
        trust: dict[str, Any],
        trusted: str,
        policy: dict[str, Any],
        grants: str,
        description: str,
    ) -> list[Change]:
        resource = f"iam role {role}"
        try:
            current = self.iam.get_role(RoleName=role)["Role"]
        except ClientError as error:
            if _code(error) != "NoSuchEntity":
                raise
            current = None
        changes = []
        if current is None:
            changes.append(
                Change(
                    resource,
                    f"create, trusted by {trusted}",
                    lambda: self.iam.create_role(
                        RoleName=role,
                        AssumeRolePolicyDocument=json.dumps(trust),
                        Description=description,
                    ),
                )
            )
        elif _normalized(_document(current["AssumeRolePolicyDocument"])) != _normalized(trust):
            changes.append(
                Change(
                    resource,
                    f"trust {trusted} only",
                    lambda: self.iam.update_assume_role_policy(
                        RoleName=role, PolicyDocument=json.dumps(trust)
                    ),
                )
            )
        if current is None or self._inline_policy(role) != _normalized(policy):
            changes.append(
                Change(
                    resource,
                    f"put inline policy {role} ({grants})",
                    lambda: self.iam.put_role_policy(
                        RoleName=role, PolicyName=role, PolicyDocument=json.dumps(policy)
                    ),
                )
            )
        return changes

    def _inline_policy(self, role: str) -> Any:
        try:
            response = self.iam.get_role_policy(RoleName=role, PolicyName=role)
        except ClientError as error:
            if _code(error) == "NoSuchEntity":
                return None
            raise
        return _normalized(_document(response["PolicyDocument"]))


def resolve_target(
    lake: str,
    database: str,
    aws: AwsClientsResource | None = None,
    role_name: str = DEFAULT_ROLE,
    log_group: str = DEFAULT_LOG_GROUP,
    research_role_name: str = RESEARCH_ROLE,
) -> Target:
    """The target of ``lake``: account and partition from STS, region from the AWS chain."""
    bucket, prefix = split_s3_uri(lake)
    # The prefix as written, before asking AWS anything: the URI parser drops a ?… or #… tail.
    check_prefix(bucket, lake.split("://", 1)[-1].partition("/")[2].strip("/"))
    aws = aws or aws_clients()
    region = aws.region_name or aws_region()
    if not region:
        raise ValueError("no AWS region: set AWS_REGION (or a profile's region)")
    arn = aws.client("sts").get_caller_identity()["Arn"]  # arn:<partition>:sts::<account>:...
    partition, account = arn.split(":")[1], arn.split(":")[4]
    return Target(
        bucket=bucket,
        prefix=prefix,
        database=database,
        region=region,
        account=account,
        partition=partition,
        role_name=role_name,
        log_group=log_group,
        research_role_name=research_role_name,
    )


def provision(
    target: Target, dry_run: bool = False, echo: Callable[[str], None] = print
) -> list[Change]:
    """Plans, prints, and (unless ``dry_run``) applies; returns the plan."""
    changes = Provisioner(target).plan()
    echo(f"provisioning {target.lake} in {target.region} (account {target.account})")
    if not changes:
        echo("nothing to change: everything is as it should be")
        _echo_roles(target, echo)
        return changes
    for change in changes:
        echo(f"  {'would ' if dry_run else ''}{change}")
    if dry_run:
        echo(f"dry run: {len(changes)} change(s) planned, nothing changed")
        return changes
    for change in changes:
        change.apply()
    echo(f"applied {len(changes)} change(s)")
    _echo_roles(target, echo)
    return changes


def _echo_roles(target: Target, echo: Callable[[str], None]) -> None:
    for label, name in (("Glue jobs", target.role_name), ("research", target.research_role_name)):
        echo(f"{label} role: {target.role_arn(name)}")
