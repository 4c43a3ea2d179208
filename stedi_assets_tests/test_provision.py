"""``stedi provision`` against moto's S3, Glue, IAM, CloudWatch Logs and STS over HTTP."""

import json
from typing import Any
from urllib.parse import unquote

import boto3
import pytest
from botocore.exceptions import ClientError

from stedi_assets.aws.provision import (
    GLUE_ACTIONS,
    Target,
    glue_job_policy,
    provision,
    resolve_target,
)
from stedi_assets.cli import main

ACCOUNT = "123456789012"  # moto's


def _document(value: str | dict[str, Any]) -> dict[str, Any]:
    return json.loads(unquote(value)) if isinstance(value, str) else value


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def test_provision_creates_a_private_encrypted_bucket_a_database_and_a_least_privilege_role(
    moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    lake = "s3://stedi-provisioned/lake"
    target = resolve_target(lake, database="stedi_prov", role_name="stedi-glue-prov")
    assert (target.bucket, target.prefix, target.region, target.account) == (
        "stedi-provisioned",
        "lake",
        "us-east-1",
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
    assert boto3.client("glue").get_database(Name="stedi_prov")["Database"]["Name"] == "stedi_prov"

    iam = boto3.client("iam")
    role = iam.get_role(RoleName="stedi-glue-prov")["Role"]
    trust = _document(role["AssumeRolePolicyDocument"])
    assert trust["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "glue.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ]
    policy = _document(
        iam.get_role_policy(RoleName="stedi-glue-prov", PolicyName="stedi-glue-prov")[
            "PolicyDocument"
        ]
    )
    assert policy == glue_job_policy(target)
    statements = {s["Sid"]: s for s in policy["Statement"]}
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        for action in _as_list(statement["Action"]):
            assert "*" not in action, action  # no wildcard action at all
        for resource in _as_list(statement["Resource"]):
            assert resource != "*" and resource.startswith("arn:aws:"), resource

    listing = statements["ListTheLakeOnly"]
    assert listing["Action"] == ["s3:ListBucket"]
    assert listing["Resource"] == ["arn:aws:s3:::stedi-provisioned"]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["lake", "lake/*"]}}
    objects = statements["ReadWriteTheLake"]
    assert objects["Resource"] == ["arn:aws:s3:::stedi-provisioned/lake/*"]
    assert {a.split(":")[0] for a in objects["Action"]} == {"s3"}
    glue = statements["CatalogOfTheLake"]
    assert glue["Action"] == GLUE_ACTIONS
    assert not any("Delete" in a for a in glue["Action"])
    assert glue["Resource"] == [
        f"arn:aws:glue:us-east-1:{ACCOUNT}:catalog",
        f"arn:aws:glue:us-east-1:{ACCOUNT}:database/stedi_prov",
        f"arn:aws:glue:us-east-1:{ACCOUNT}:table/stedi_prov/*",
    ]
    logs = statements["OwnLogGroup"]
    group = f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws-glue/jobs/stedi"
    assert logs["Resource"] == [group, f"{group}:log-stream:*"]
    assert logs["Action"] == ["logs:CreateLogStream", "logs:PutLogEvents"]
    groups = boto3.client("logs").describe_log_groups(logGroupNamePrefix="/aws-glue/jobs/stedi")
    assert [g["logGroupName"] for g in groups["logGroups"]] == ["/aws-glue/jobs/stedi"]

    # A second run finds nothing to change and says so.
    capsys.readouterr()
    assert provision(target) == []
    assert "nothing to change" in capsys.readouterr().out

    # Drift is found and repaired, and only the drift.
    s3.delete_public_access_block(Bucket="stedi-provisioned")
    repaired = provision(target)
    assert [c.description for c in repaired] == ["block all public access"]
    assert provision(target) == []


def test_a_dry_run_prints_the_plan_and_creates_nothing(
    moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    target = resolve_target("s3://stedi-dry-run", database="stedi_dry", role_name="stedi-dry")
    planned = provision(target, dry_run=True)
    out = capsys.readouterr().out
    assert "would s3://stedi-dry-run: create bucket" in out
    assert "nothing changed" in out
    resources = {c.resource for c in planned}
    assert {"s3://stedi-dry-run", "glue database stedi_dry", "iam role stedi-dry"} <= resources

    with pytest.raises(ClientError):
        boto3.client("s3").head_bucket(Bucket="stedi-dry-run")
    with pytest.raises(ClientError):
        boto3.client("glue").get_database(Name="stedi_dry")
    with pytest.raises(ClientError):
        boto3.client("iam").get_role(RoleName="stedi-dry")


def test_a_lake_at_the_bucket_root_may_list_the_whole_bucket() -> None:
    target = Target(bucket="b", prefix="", database="d", region="eu-west-1", account=ACCOUNT)
    statements = {s["Sid"]: s for s in glue_job_policy(target)["Statement"]}
    assert "Condition" not in statements["ListTheLakeOnly"]
    assert statements["ReadWriteTheLake"]["Resource"] == ["arn:aws:s3:::b/*"]


def test_the_provision_command(moto_endpoint: str, capsys: pytest.CaptureFixture[str]) -> None:
    lake = "s3://stedi-cli-provision/lake"
    assert main(["provision", "--lake", lake, "--dry-run"]) == 0
    assert "would" in capsys.readouterr().out
    assert main(["provision", "--lake", lake]) == 0
    assert "applied" in capsys.readouterr().out
    assert main(["provision", "--lake", lake]) == 0
    assert "nothing to change" in capsys.readouterr().out
    assert main(["provision", "--lake", "/tmp/not-s3"]) == 2
    assert "s3://" in capsys.readouterr().err
