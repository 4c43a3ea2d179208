"""``stedi provision``: the AWS resources an s3:// lakehouse needs, created idempotently.

What it manages, for ``--lake s3://<bucket>/<prefix>``:

* the bucket: private (ACLs disabled, every public access block on), default encryption on;
* the Glue database (``STEDI_DATABASE``, default ``stedi``);
* the CloudWatch log group Glue jobs of this lakehouse log to (``/aws-glue/jobs/stedi``);
* an IAM role for Glue jobs (trusting ``glue.amazonaws.com``) with one inline, least-privilege
  policy: S3 on that bucket and prefix only, Glue on that database and its tables only, and
  logs in that log group only. No ``"*"`` action and no ``"*"`` resource.

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

from stedi_assets.aws.clients import AwsClientsResource, aws_clients
from stedi_assets.storage.s3 import aws_region, s3_resource, split_s3_uri

DEFAULT_ROLE = "stedi-glue-job"
DEFAULT_LOG_GROUP = "/aws-glue/jobs/stedi"
LOG_RETENTION_DAYS = 30
ENCRYPTION = {"SSEAlgorithm": "AES256"}  # SSE-S3: encryption at rest with no key to manage
PUBLIC_ACCESS_BLOCK = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}
OWNERSHIP = {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}  # ACLs disabled

# What a run does in the catalog: Iceberg's Glue catalog reads a table and commits a new
# metadata location with UpdateTable (Glue's VersionId makes that an atomic compare-and-swap),
# creates tables and the database the first time; the landing JSON tables are created and
# updated from sql/. No deletes, no partitions (Iceberg keeps its own), no other databases.
GLUE_ACTIONS = [
    "glue:GetDatabase",
    "glue:CreateDatabase",
    "glue:GetTable",
    "glue:GetTables",
    "glue:CreateTable",
    "glue:UpdateTable",
]
# Reading landing files (S3A) and Iceberg's data and metadata files (S3FileIO writes new files,
# multipart for large ones; expiring snapshots and removing orphan files delete them).
S3_OBJECT_ACTIONS = [
    "s3:GetObject",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
]


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

    @property
    def lake(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")


@dataclass(frozen=True)
class Change:
    """One step of the plan: what it does (for people) and how (``apply``)."""

    resource: str
    description: str
    apply: Callable[[], Any] = field(compare=False, repr=False)

    def __str__(self) -> str:
        return f"{self.resource}: {self.description}"


def glue_trust_policy() -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "glue.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }


def glue_job_policy(target: Target) -> dict[str, Any]:
    """The role's inline policy: least privilege for one lake, one database, one log group."""
    p, region, account = target.partition, target.region, target.account
    bucket_arn = f"arn:{p}:s3:::{target.bucket}"
    objects = f"{bucket_arn}/{target.prefix}/*" if target.prefix else f"{bucket_arn}/*"
    list_bucket: dict[str, Any] = {
        "Sid": "ListTheLakeOnly",
        "Effect": "Allow",
        "Action": ["s3:ListBucket"],
        "Resource": [bucket_arn],
    }
    if target.prefix:
        list_bucket["Condition"] = {
            "StringLike": {"s3:prefix": [target.prefix, f"{target.prefix}/*"]}
        }
    glue = f"arn:{p}:glue:{region}:{account}"
    log_group = f"arn:{p}:logs:{region}:{account}:log-group:{target.log_group}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            list_bucket,
            {
                "Sid": "BucketRegion",
                "Effect": "Allow",
                "Action": ["s3:GetBucketLocation"],
                "Resource": [bucket_arn],
            },
            {
                "Sid": "ReadWriteTheLake",
                "Effect": "Allow",
                "Action": S3_OBJECT_ACTIONS,
                "Resource": [objects],
            },
            {
                "Sid": "CatalogOfTheLake",
                "Effect": "Allow",
                "Action": GLUE_ACTIONS,
                # Glue checks the catalog and the database as well as the table.
                "Resource": [
                    f"{glue}:catalog",
                    f"{glue}:database/{target.database}",
                    f"{glue}:table/{target.database}/*",
                ],
            },
            {
                "Sid": "OwnLogGroup",
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": [log_group, f"{log_group}:log-stream:*"],
            },
        ],
    }


def _code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


def _status(error: ClientError) -> int:
    return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _document(value: str | dict[str, Any]) -> dict[str, Any]:
    """IAM returns policy documents URL-encoded JSON (boto3 usually decodes them already)."""
    return json.loads(unquote(value)) if isinstance(value, str) else value


def _normalized(document: dict[str, Any]) -> Any:
    """Policies compare equal when they only differ in "x" versus ["x"]."""

    def norm(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: norm(v) for k, v in value.items()}
        if isinstance(value, list):
            items = [norm(v) for v in value]
            return items[0] if len(items) == 1 else items
        return value

    return norm(document)


class Provisioner:
    """Compares what exists for one lake with what it needs, and makes the difference."""

    def __init__(self, target: Target, aws: AwsClientsResource | None = None) -> None:
        self.target = target
        aws = aws or aws_clients()
        self.s3 = s3_resource().get_client()
        self.glue = aws.client("glue")
        self.iam = aws.client("iam")
        self.logs = aws.client("logs")

    def plan(self) -> list[Change]:
        return [
            *self._bucket_changes(),
            *self._database_changes(),
            *self._log_group_changes(),
            *self._role_changes(),
        ]

    # --- the bucket ---------------------------------------------------------------------
    def _bucket_changes(self) -> list[Change]:
        bucket, region = self.target.bucket, self.target.region
        name = f"s3://{bucket}"
        try:
            self.s3.head_bucket(Bucket=bucket)
            exists = True
        except ClientError as error:
            if _status(error) == 403:
                raise PermissionError(
                    f"bucket {bucket} exists but this account cannot use it (403); "
                    "bucket names are global: choose another"
                ) from error
            if _status(error) != 404:
                raise
            exists = False
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
        if not exists or not self._encrypted():
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

    def _encrypted(self) -> bool:
        """Any default encryption counts (SSE-S3 or a KMS key someone chose on purpose)."""
        try:
            response = self.s3.get_bucket_encryption(Bucket=self.target.bucket)
        except ClientError as error:
            if _code(error) == "ServerSideEncryptionConfigurationNotFoundError":
                return False
            raise
        rules = response["ServerSideEncryptionConfiguration"].get("Rules", [])
        return any(r.get("ApplyServerSideEncryptionByDefault") for r in rules)

    # --- the Glue database and the log group --------------------------------------------
    def _database_changes(self) -> list[Change]:
        database = self.target.database
        try:
            self.glue.get_database(Name=database)
            return []
        except ClientError as error:
            if _code(error) != "EntityNotFoundException":
                raise
        description = f"STEDI lakehouse tables of {self.target.lake}"
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

    # --- the IAM role -------------------------------------------------------------------
    def _role_changes(self) -> list[Change]:
        role = self.target.role_name
        trust = glue_trust_policy()
        policy = glue_job_policy(self.target)
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
                    "create, trusted by glue.amazonaws.com",
                    lambda: self.iam.create_role(
                        RoleName=role,
                        AssumeRolePolicyDocument=json.dumps(trust),
                        Description=f"Glue jobs of the STEDI lakehouse {self.target.lake}",
                    ),
                )
            )
        elif _normalized(_document(current["AssumeRolePolicyDocument"])) != _normalized(trust):
            changes.append(
                Change(
                    resource,
                    "trust glue.amazonaws.com only",
                    lambda: self.iam.update_assume_role_policy(
                        RoleName=role, PolicyDocument=json.dumps(trust)
                    ),
                )
            )
        if current is None or self._inline_policy() != _normalized(policy):
            changes.append(
                Change(
                    resource,
                    f"put inline policy {role} (S3 {self.target.lake}, Glue database "
                    f"{self.target.database}, logs {self.target.log_group})",
                    lambda: self.iam.put_role_policy(
                        RoleName=role, PolicyName=role, PolicyDocument=json.dumps(policy)
                    ),
                )
            )
        return changes

    def _inline_policy(self) -> Any:
        try:
            response = self.iam.get_role_policy(
                RoleName=self.target.role_name, PolicyName=self.target.role_name
            )
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
) -> Target:
    """The target of ``lake``: account and partition from STS, region from the AWS chain."""
    bucket, prefix = split_s3_uri(lake)
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
    )


def provision(
    target: Target, dry_run: bool = False, echo: Callable[[str], None] = print
) -> list[Change]:
    """Plans, prints, and (unless ``dry_run``) applies; returns the plan."""
    changes = Provisioner(target).plan()
    echo(f"provisioning {target.lake} in {target.region} (account {target.account})")
    if not changes:
        echo("nothing to change: everything is as it should be")
        return changes
    for change in changes:
        echo(f"  {'would ' if dry_run else ''}{change}")
    if dry_run:
        echo(f"dry run: {len(changes)} change(s) planned, nothing changed")
        return changes
    for change in changes:
        change.apply()
    echo(f"applied {len(changes)} change(s)")
    return changes
