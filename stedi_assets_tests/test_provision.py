"""``stedi provision`` against moto's S3, Glue, IAM, KMS, CloudWatch Logs and STS over HTTP.

moto has no ``simulate_principal_policy``, so what a role may do is checked with a small model
of IAM's evaluation (``allowed``) over the policy documents as moto stored them: concrete
actions on concrete ARNs, an explicit deny winning over any allow.
"""

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import boto3
import pytest
from botocore.exceptions import ClientError

from stedi_assets.aws.provision import (
    ERASURE_DEADLINE_DAYS,
    GLUE_ACTIONS,
    Target,
    glue_job_policy,
    provision,
    research_reader_policy,
    resolve_target,
)
from stedi_assets.cli import main

ACCOUNT = "123456789012"  # moto's
REGION = "us-east-1"
GLUE = f"arn:aws:glue:{REGION}:{ACCOUNT}"
IAM_INLINE_POLICIES_LIMIT = 10_240  # characters of all a role's inline policies, no spaces


def _document(value: str | dict[str, Any]) -> dict[str, Any]:
    return json.loads(unquote(value)) if isinstance(value, str) else value


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _matches(pattern: str, value: str, ignore_case: bool = False) -> bool:
    """IAM's wildcards: ``*`` any characters (``/`` too), ``?`` one character."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE if ignore_case else 0) is not None


def _conditions_hold(condition: dict[str, Any], context: dict[str, str]) -> bool:
    for operator, pairs in condition.items():
        for key, expected in pairs.items():
            actual = context.get(key)
            if actual is None:  # a condition on a key the request lacks does not hold
                return False
            if operator == "StringLike":
                holds = any(_matches(e, actual) for e in _as_list(expected))
            elif operator in ("StringEquals", "Bool"):
                holds = actual in _as_list(expected)
            else:
                raise AssertionError(f"condition operator {operator} is not modelled")
            if not holds:
                return False
    return True


def allowed(
    policy: dict[str, Any], action: str, resource: str, context: dict[str, str] | None = None
) -> bool:
    """IAM's evaluation of one policy: an explicit deny wins, else any allow, else denied."""
    verdict = False
    for statement in _as_list(policy["Statement"]):
        if not any(_matches(a, action, ignore_case=True) for a in _as_list(statement["Action"])):
            continue
        if not any(_matches(r, resource) for r in _as_list(statement["Resource"])):
            continue
        if not _conditions_hold(statement.get("Condition", {}), context or {}):
            continue
        if statement["Effect"] == "Deny":
            return False
        verdict = True
    return verdict


def _applies(policy: dict[str, Any], action: str, resource: str, context: dict[str, str]) -> bool:
    """Whether a deny statement of ``policy`` applies to the request."""
    allow_all = {"Effect": "Allow", "Action": "*", "Resource": "*"}
    everything = {"Statement": [allow_all, *policy["Statement"]]}
    return not allowed(everything, action, resource, context)


def _role_policy(role: str) -> dict[str, Any]:
    response = boto3.client("iam").get_role_policy(RoleName=role, PolicyName=role)
    return _document(response["PolicyDocument"])


def _trust(role: str) -> dict[str, Any]:
    return _document(
        boto3.client("iam").get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]
    )


def _lifecycle(bucket: str) -> dict[str, dict[str, Any]]:
    rules = boto3.client("s3").get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    return {rule["ID"]: rule for rule in rules}


def _actions(policy: dict[str, Any]) -> set[str]:
    return {a for s in policy["Statement"] for a in _as_list(s["Action"])}


@pytest.fixture(scope="module")
def lake(moto_endpoint: str) -> Iterator[Target]:
    """One provisioned lake whose roles the policy tests read back from moto."""
    target = resolve_target(
        "s3://stedi-prov-roles/lake",
        database="stedi_roles",
        role_name="stedi-glue-roles",
        research_role_name="stedi-research-roles",
    )
    provision(target, echo=lambda _: None)
    yield target


def test_provision_creates_a_private_encrypted_bucket_two_databases_and_two_roles(
    moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    lake = "s3://stedi-provisioned/lake"
    target = resolve_target(
        lake,
        database="stedi_prov",
        role_name="stedi-glue-prov",
        research_role_name="stedi-research-prov",
    )
    assert (target.bucket, target.prefix, target.region, target.account) == (
        "stedi-provisioned",
        "lake",
        REGION,
        ACCOUNT,
    )

    changes = provision(target)
    assert changes, "a first run has everything to create"

    s3 = boto3.client("s3")
    block = s3.get_public_access_block(Bucket="stedi-provisioned")
    assert all(block["PublicAccessBlockConfiguration"].values())
    assert len(block["PublicAccessBlockConfiguration"]) == 4
    rules = s3.get_bucket_encryption(Bucket="stedi-provisioned")[
        "ServerSideEncryptionConfiguration"
    ]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    ownership = s3.get_bucket_ownership_controls(Bucket="stedi-provisioned")
    assert ownership["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    assert "Status" not in s3.get_bucket_versioning(Bucket="stedi-provisioned")  # never turned on
    glue = boto3.client("glue")
    for database in ("stedi_prov", "stedi_prov_quarantine"):
        assert glue.get_database(Name=database)["Database"]["Name"] == database

    # The job role: only Glue jobs of this account may assume it.
    assert _trust("stedi-glue-prov")["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "glue.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
        }
    ]
    policy = _role_policy("stedi-glue-prov")
    assert policy == glue_job_policy(target)
    statements = {s["Sid"]: s for s in policy["Statement"]}
    for statement in policy["Statement"]:
        for action in _as_list(statement["Action"]):
            assert "*" not in action, action  # no wildcard action at all
        for resource in _as_list(statement["Resource"]):
            assert resource != "*" and resource.startswith("arn:aws:"), resource
    assert [s["Sid"] for s in policy["Statement"] if s["Effect"] == "Deny"] == ["NeverWriteLanding"]
    listing = statements["ListTheLakeOnly"]
    assert listing["Action"] == ["s3:ListBucket"]
    assert listing["Resource"] == ["arn:aws:s3:::stedi-provisioned"]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["lake", "lake/*"]}}
    assert statements["ReadTheLake"]["Resource"] == ["arn:aws:s3:::stedi-provisioned/lake/*"]
    assert statements["WriteTheTablesOnly"]["Resource"] == [
        f"arn:aws:s3:::stedi-provisioned/lake/{folder}/*"
        for folder in (
            "customer/trusted",
            "accelerometer/trusted",
            "step_trainer/trusted",
            "customer/curated",
            "machine_learning/curated",
            "customer/quarantine",
            "accelerometer/quarantine",
            "step_trainer/quarantine",
        )
    ]
    catalog = statements["CatalogOfTheLake"]
    assert catalog["Action"] == GLUE_ACTIONS
    assert not any("Delete" in a for a in catalog["Action"])
    assert catalog["Resource"] == [
        f"{GLUE}:catalog",
        f"{GLUE}:database/stedi_prov",
        f"{GLUE}:table/stedi_prov/*",
        f"{GLUE}:database/stedi_prov_quarantine",
        f"{GLUE}:table/stedi_prov_quarantine/*",
    ]
    logs = statements["OwnLogGroup"]
    group = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws-glue/jobs/stedi"
    assert logs["Resource"] == [group, f"{group}:log-stream:*"]
    assert logs["Action"] == ["logs:CreateLogStream", "logs:PutLogEvents"]
    groups = boto3.client("logs").describe_log_groups(logGroupNamePrefix="/aws-glue/jobs/stedi")
    assert [g["logGroupName"] for g in groups["logGroups"]] == ["/aws-glue/jobs/stedi"]

    # The research role: the account's principals (as IAM allows them), reading only.
    assert _trust("stedi-research-prov")["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            "Action": "sts:AssumeRole",
        }
    ]
    research = _role_policy("stedi-research-prov")
    assert research == research_reader_policy(target)
    for statement in research["Statement"]:
        for resource in _as_list(statement["Resource"]):
            assert resource != "*" and resource.startswith("arn:aws:"), resource
        if statement["Effect"] == "Allow":
            for action in _as_list(statement["Action"]):
                assert "*" not in action, action

    # SSE-S3 needs no key: neither role has any KMS permission.
    assert not any(a.startswith("kms:") for a in _actions(policy) | _actions(research))
    for document in (policy, research):  # IAM's limit on a role's inline policies
        assert len(json.dumps(document, separators=(",", ":"))) < IAM_INLINE_POLICIES_LIMIT

    # A second run finds nothing to change and says so.
    capsys.readouterr()
    assert provision(target) == []
    out = capsys.readouterr().out
    assert "nothing to change" in out
    assert f"research role: arn:aws:iam::{ACCOUNT}:role/stedi-research-prov" in out

    # Drift is found and repaired, and only the drift.
    s3.delete_public_access_block(Bucket="stedi-provisioned")
    repaired = provision(target)
    assert [c.description for c in repaired] == ["block all public access"]
    assert provision(target) == []


def test_the_job_role_reads_the_lake_but_writes_only_the_table_zones(lake: Target) -> None:
    policy = _role_policy(lake.role_name)
    objects = "arn:aws:s3:::stedi-prov-roles/lake"
    for key in (
        "customer/landing/customer-1655564376679.json",
        "accelerometer/landing/2022-06-18/part-1.json",
        "customer/trusted/metadata/v3.metadata.json",
        "customer/quarantine/data/00000-1.parquet",
        "customer/trusted",  # S3A probes folders with HEAD
    ):
        assert allowed(policy, "s3:GetObject", f"{objects}/{key}"), key
    for action in ("s3:PutObject", "s3:DeleteObject"):
        for key in (
            "customer/trusted/data/day=2022-06-18/00000-1.parquet",
            "machine_learning/curated/metadata/v2.metadata.json",
            "step_trainer/quarantine/data/00000-1.parquet",
            "customer/trusted/",  # S3A's folder marker after a delete
        ):
            assert allowed(policy, action, f"{objects}/{key}"), (action, key)
        for key in (
            "customer/landing/customer-1.json",
            "step_trainer/landing/2022-06-18/x.json",
            "customer/landing/trusted/x.json",  # a table zone's name below landing
            "_athena_results/x.csv",
            "_staging/customer_trusted/x.parquet",
            "customer/other/x",
        ):
            assert not allowed(policy, action, f"{objects}/{key}"), (action, key)
        assert not allowed(policy, action, "arn:aws:s3:::stedi-prov-roles/lake2/customer/trusted/x")
        assert not allowed(policy, action, "arn:aws:s3:::another-bucket/lake/customer/trusted/x")
    bucket = "arn:aws:s3:::stedi-prov-roles"
    assert allowed(policy, "s3:ListBucket", bucket, {"s3:prefix": "lake/customer/landing/"})
    assert not allowed(policy, "s3:ListBucket", bucket, {"s3:prefix": "other/"})
    assert not allowed(policy, "s3:ListBucket", bucket)  # the whole bucket
    for database in ("stedi_roles", "stedi_roles_quarantine"):
        for action in ("glue:GetTable", "glue:UpdateTable", "glue:CreateTable"):
            assert allowed(policy, action, f"{GLUE}:table/{database}/customer_trusted")
        assert allowed(policy, "glue:CreateDatabase", f"{GLUE}:database/{database}")
    assert not allowed(policy, "glue:DeleteTable", f"{GLUE}:table/stedi_roles/customer_trusted")
    assert not allowed(policy, "glue:GetTable", f"{GLUE}:table/other_db/x")


def test_the_research_role_reads_trusted_and_curated_tables_but_no_landing_or_quarantine(
    lake: Target,
) -> None:
    policy = _role_policy(lake.research_role_name)
    objects = "arn:aws:s3:::stedi-prov-roles/lake"
    for key in (
        "customer/trusted/data/00000-1.parquet",
        "accelerometer/trusted/metadata/v1.metadata.json",
        "step_trainer/trusted/data/x.parquet",
        "customer/curated/data/x.parquet",
        "machine_learning/curated/metadata/snap-1.avro",
    ):
        assert allowed(policy, "s3:GetObject", f"{objects}/{key}"), key
        for action in ("s3:PutObject", "s3:DeleteObject", "s3:GetObjectVersion"):
            assert not allowed(policy, action, f"{objects}/{key}"), (action, key)
    for key in (
        "customer/landing/customer-1.json",
        "accelerometer/landing/2022-06-18/x.json",
        "customer/quarantine/data/00000-1.parquet",
        "step_trainer/quarantine/metadata/v1.metadata.json",
        "_athena_results/operator-query.csv",  # operators' results, maybe of the quarantine
        "_staging/x.parquet",
    ):
        for action in ("s3:GetObject", "s3:PutObject"):
            assert not allowed(policy, action, f"{objects}/{key}"), (action, key)
    bucket = "arn:aws:s3:::stedi-prov-roles"
    for prefix in ("lake/customer/trusted/", "lake/machine_learning/curated/metadata/"):
        assert allowed(policy, "s3:ListBucket", bucket, {"s3:prefix": prefix}), prefix
    for prefix in ("lake/customer/quarantine/", "lake/customer/landing/", "lake/", ""):
        assert not allowed(policy, "s3:ListBucket", bucket, {"s3:prefix": prefix}), prefix

    # Athena in the primary workgroup, results in the research folder of the lake.
    results = f"{objects}/_athena_results/research/2b0c-query.csv"
    assert allowed(policy, "s3:PutObject", results)
    assert allowed(policy, "s3:GetObject", results)
    workgroup = f"arn:aws:athena:{REGION}:{ACCOUNT}:workgroup/primary"
    for action in ("athena:StartQueryExecution", "athena:GetQueryResults"):
        assert allowed(policy, action, workgroup)
    assert not allowed(policy, "athena:StartQueryExecution", f"{workgroup[:-7]}other")

    # Glue: the research database's metadata (landing tables' included), never the quarantine.
    for action in ("glue:GetTable", "glue:GetTables", "glue:GetPartitions"):
        assert allowed(policy, action, f"{GLUE}:table/stedi_roles/customer_trusted")
    assert allowed(policy, "glue:GetDatabase", f"{GLUE}:database/stedi_roles")
    for action in ("glue:GetTable", "glue:GetTables", "glue:UpdateTable"):
        quarantine = f"{GLUE}:table/stedi_roles_quarantine/customer_quarantine"
        assert not allowed(policy, action, quarantine)
    assert not allowed(policy, "glue:GetDatabase", f"{GLUE}:database/stedi_roles_quarantine")
    assert not allowed(policy, "glue:UpdateTable", f"{GLUE}:table/stedi_roles/customer_trusted")
    assert not any(
        a.startswith(("glue:Create", "glue:Update", "glue:Delete")) for a in _actions(policy)
    )


def test_the_bucket_policy_denies_plain_http_and_keeps_other_statements(
    moto_endpoint: str,
) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="stedi-prov-policy")
    theirs = {
        "Sid": "AnalyticsReadsItsFolder",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
        "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::stedi-prov-policy/analytics/*",
    }
    s3.put_bucket_policy(
        Bucket="stedi-prov-policy",
        Policy=json.dumps({"Version": "2012-10-17", "Id": "theirs", "Statement": [theirs]}),
    )
    target = resolve_target(
        "s3://stedi-prov-policy/lake",
        database="stedi_policy",
        role_name="stedi-glue-policy",
        research_role_name="stedi-research-policy",
    )
    planned = provision(target)
    assert any("deny plain HTTP" in c.description and "1 other" in c.description for c in planned)

    policy = json.loads(s3.get_bucket_policy(Bucket="stedi-prov-policy")["Policy"])
    assert policy["Id"] == "theirs"
    assert [s["Sid"] for s in policy["Statement"]] == ["AnalyticsReadsItsFolder", "DenyPlainHttp"]
    assert policy["Statement"][0] == theirs
    ours = policy["Statement"][1]
    assert ours["Principal"] == "*"
    assert ours["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    deny = {"Version": "2012-10-17", "Statement": [ours]}
    for resource in ("arn:aws:s3:::stedi-prov-policy", "arn:aws:s3:::stedi-prov-policy/lake/x"):
        for action in ("s3:GetObject", "s3:PutObject", "s3:ListBucket"):
            over_http = {"aws:SecureTransport": "false"}
            over_tls = {"aws:SecureTransport": "true"}
            # allowed() of a deny-only policy: False always; what matters is whether it applies.
            assert _applies(deny, action, resource, over_http), (action, resource)
            assert not _applies(deny, action, resource, over_tls), (action, resource)
    # moto enforces bucket policies on object requests, and this one comes over plain HTTP.
    with pytest.raises(ClientError) as refused:
        s3.put_object(Bucket="stedi-prov-policy", Key="lake/customer/landing/x.json", Body=b"{}")
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert provision(target) == []

    # Our statement changed by hand is put back; theirs stays as it is.
    s3.put_bucket_policy(
        Bucket="stedi-prov-policy",
        Policy=json.dumps(
            {"Version": "2012-10-17", "Statement": [theirs, {**ours, "Resource": "arn:x"}]}
        ),
    )
    assert [c.description for c in provision(target)] == [
        "bucket policy: deny plain HTTP (statement DenyPlainHttp; 1 other statement(s) kept)"
    ]
    statements = json.loads(s3.get_bucket_policy(Bucket="stedi-prov-policy")["Policy"])["Statement"]
    assert statements == [theirs, ours]
    assert provision(target) == []


def test_lifecycle_rules_are_merged_with_the_buckets_own_rules(moto_endpoint: str) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="stedi-prov-lifecycle")
    theirs = {
        "ID": "their-logs",
        "Status": "Enabled",
        "Filter": {"Prefix": "logs/"},
        "Expiration": {"Days": 90},
    }
    stale = {  # an earlier version of our own rule: replaced, not duplicated
        "ID": "stedi lake/ abort-incomplete-uploads",
        "Status": "Enabled",
        "Filter": {"Prefix": "lake/"},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 30},
    }
    s3.put_bucket_lifecycle_configuration(
        Bucket="stedi-prov-lifecycle", LifecycleConfiguration={"Rules": [theirs, stale]}
    )
    target = resolve_target(
        "s3://stedi-prov-lifecycle/lake",
        database="stedi_lifecycle",
        role_name="stedi-glue-lifecycle",
        research_role_name="stedi-research-lifecycle",
    )
    planned = [c.description for c in provision(target) if c.description.startswith("lifecycle")]
    assert planned == [
        "lifecycle: abort incomplete multipart uploads under lake/ after 1 day; expire "
        "Athena results under lake/_athena_results/ after 1 day (1 other rule(s) kept)"
    ]
    rules = _lifecycle("stedi-prov-lifecycle")
    assert list(rules) == [
        "their-logs",
        "stedi lake/ abort-incomplete-uploads",
        "stedi lake/ expire-athena-results",
    ]
    assert rules["their-logs"] == theirs
    assert rules["stedi lake/ abort-incomplete-uploads"] == {
        **stale,
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
    }
    assert rules["stedi lake/ expire-athena-results"] == {
        "ID": "stedi lake/ expire-athena-results",
        "Status": "Enabled",
        "Filter": {"Prefix": "lake/_athena_results/"},
        "Expiration": {"Days": 1},
    }
    # No versioning, so no rule for old versions, and provision does not turn versioning on.
    assert "Status" not in s3.get_bucket_versioning(Bucket="stedi-prov-lifecycle")
    assert provision(target) == []


@pytest.mark.parametrize("status", ["Enabled", "Suspended"])
def test_a_versioned_bucket_gets_the_erasure_deadline_for_old_versions(
    moto_endpoint: str, status: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bucket = f"stedi-prov-versions-{status.lower()}"
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": status})
    target = resolve_target(
        f"s3://{bucket}/lake",
        database=f"stedi_versions_{status.lower()}",
        role_name=f"stedi-glue-versions-{status.lower()}",
        research_role_name=f"stedi-research-versions-{status.lower()}",
    )
    provision(target, dry_run=True)
    out = capsys.readouterr().out
    assert f"the bucket keeps old versions (versioning {status})" in out
    assert "after they become noncurrent (the erasure deadline)" in out
    with pytest.raises(ClientError):  # the dry run changed nothing
        s3.get_bucket_lifecycle_configuration(Bucket=bucket)

    provision(target)
    rule = _lifecycle(bucket)["stedi lake/ expire-noncurrent-versions"]
    assert rule["Filter"] == {"Prefix": "lake/"}
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": ERASURE_DEADLINE_DAYS}
    assert rule["Expiration"] == {"ExpiredObjectDeleteMarker": True}
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == status  # left as it was
    assert provision(target) == []


@pytest.mark.parametrize("form", ["key id", "key arn", "alias"])
def test_a_kms_encrypted_bucket_keeps_its_key_and_the_roles_may_use_that_key_only(
    moto_endpoint: str, form: str
) -> None:
    kms = boto3.client("kms")
    key = kms.create_key(Description="the lake's key")["KeyMetadata"]
    alias = f"alias/stedi-lake-{form.replace(' ', '-')}"
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    key_id = {"key id": key["KeyId"], "key arn": key["Arn"], "alias": alias}[form]
    bucket = f"stedi-prov-kms-{form.replace(' ', '-')}"
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket)
    default = {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_id}
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": default, "BucketKeyEnabled": True}]
        },
    )
    suffix = form.replace(" ", "-")
    target = resolve_target(
        f"s3://{bucket}/lake",
        database=f"stedi_kms_{suffix.replace('-', '_')}",
        role_name=f"stedi-glue-kms-{suffix}",
        research_role_name=f"stedi-research-kms-{suffix}",
    )
    planned = provision(target)
    assert not any("encryption" in c.description for c in planned)  # the KMS key stays
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"] == default

    assert key["Arn"] == f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{key['KeyId']}"
    job = _role_policy(target.role_name)
    research = _role_policy(target.research_role_name)
    assert {s["Sid"]: s for s in job["Statement"]}["TheBucketKey"] == {
        "Sid": "TheBucketKey",
        "Effect": "Allow",
        "Action": ["kms:Decrypt", "kms:GenerateDataKey", "kms:Encrypt"],
        "Resource": [key["Arn"]],
    }
    for action in ("kms:Decrypt", "kms:GenerateDataKey", "kms:Encrypt"):
        assert allowed(job, action, key["Arn"])
    assert allowed(research, "kms:Decrypt", key["Arn"])
    assert not allowed(research, "kms:Encrypt", key["Arn"])
    other_key = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/00000000-0000-0000-0000-000000000000"
    for policy in (job, research):
        assert not allowed(policy, "kms:Decrypt", other_key)
        assert not any(a.startswith("kms:") and "*" in a for a in _actions(policy))
    assert provision(target) == []


@pytest.mark.parametrize(
    ("lake", "message"),
    [
        ("s3://stedi-no-prefix", "provision needs a lake prefix: s3://stedi-no-prefix/prefix"),
        ("s3://stedi-no-prefix/", "provision needs a lake prefix"),
        ("s3://stedi-wild/la*ke", "would be a wildcard"),
        ("s3://stedi-wild/lake?", "would be a wildcard"),
        ("s3://stedi-wild/${aws:username}", "or a variable"),
        ("s3://stedi-wild/lake#x", "cut the URI short"),
        ("s3://stedi-long/" + "x" * 201, "at most 200 characters"),
    ],
)
def test_provision_refuses_a_lake_at_the_bucket_root_or_a_wildcard_prefix(
    moto_endpoint: str, lake: str, message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        resolve_target(lake, database="stedi_refused")
    with pytest.raises(ValueError, match=re.escape(message)):
        Target(
            bucket=lake.split("/")[2],
            prefix="/".join(lake.split("/")[3:]).strip("/"),
            database="d",
            region="eu-west-1",
            account=ACCOUNT,
        )
    with pytest.raises(ClientError):  # nothing was created
        boto3.client("s3").head_bucket(Bucket=lake.split("/")[2])


def test_a_dry_run_prints_the_plan_and_creates_nothing(
    moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    target = resolve_target(
        "s3://stedi-dry-run/lake",
        database="stedi_dry",
        role_name="stedi-dry",
        research_role_name="stedi-dry-research",
    )
    planned = provision(target, dry_run=True)
    out = capsys.readouterr().out
    assert "would s3://stedi-dry-run: create bucket" in out
    assert "would s3://stedi-dry-run: bucket policy: deny plain HTTP" in out
    assert "nothing changed" in out
    resources = {c.resource for c in planned}
    assert {
        "s3://stedi-dry-run",
        "glue database stedi_dry",
        "glue database stedi_dry_quarantine",
        "iam role stedi-dry",
        "iam role stedi-dry-research",
    } <= resources

    s3, glue, iam = boto3.client("s3"), boto3.client("glue"), boto3.client("iam")
    with pytest.raises(ClientError):
        s3.head_bucket(Bucket="stedi-dry-run")
    for database in ("stedi_dry", "stedi_dry_quarantine"):
        with pytest.raises(ClientError):
            glue.get_database(Name=database)
    for role in ("stedi-dry", "stedi-dry-research"):
        with pytest.raises(ClientError):
            iam.get_role(RoleName=role)

    # On an existing bucket too: its policy and lifecycle stay as they are.
    s3.create_bucket(Bucket="stedi-dry-run")
    assert provision(target, dry_run=True)
    with pytest.raises(ClientError):
        s3.get_bucket_policy(Bucket="stedi-dry-run")
    with pytest.raises(ClientError):
        s3.get_bucket_lifecycle_configuration(Bucket="stedi-dry-run")


def test_the_provision_command(moto_endpoint: str, capsys: pytest.CaptureFixture[str]) -> None:
    lake = "s3://stedi-cli-provision/lake"
    assert main(["provision", "--lake", lake, "--dry-run"]) == 0
    assert "would" in capsys.readouterr().out
    assert main(["provision", "--lake", lake]) == 0
    out = capsys.readouterr().out
    assert "applied" in out
    assert f"Glue jobs role: arn:aws:iam::{ACCOUNT}:role/stedi-glue-job" in out
    assert f"research role: arn:aws:iam::{ACCOUNT}:role/stedi-research-reader" in out
    assert main(["provision", "--lake", lake]) == 0
    assert "nothing to change" in capsys.readouterr().out
    assert main(["provision", "--lake", "/tmp/not-s3"]) == 2
    assert "s3://" in capsys.readouterr().err
    assert main(["provision", "--lake", "s3://stedi-cli-provision"]) == 2
    assert "provision needs a lake prefix" in capsys.readouterr().err
