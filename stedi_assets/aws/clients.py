"""boto3 clients for the services dagster-aws has no dedicated resource for (Glue, IAM, STS).

``AwsClientsResource`` is dagster-aws's ``ResourceWithBoto3Configuration`` (region, profile,
endpoint, credentials, retries) and builds clients exactly as dagster-aws's own resources do
(see ``dagster_aws.rds.RDSResource``). Left unset, every field falls back to boto3's standard
chain: credentials and region from env/profile/instance role, and the endpoint override from
``AWS_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL_<SERVICE>``), which boto3 reads itself.
"""

from typing import Any

import boto3.session
from dagster_aws.utils import ResourceWithBoto3Configuration, construct_boto_client_retry_config


class AwsClientsResource(ResourceWithBoto3Configuration):
    """Builds boto3 clients configured from this resource, else from the environment."""

    def client(self, service: str) -> Any:
        session = boto3.session.Session(profile_name=self.profile_name)
        return session.client(
            service,
            region_name=self.region_name,
            use_ssl=self.use_ssl,
            verify=self.verify,
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.aws_access_key_id,
            aws_secret_access_key=self.aws_secret_access_key,
            aws_session_token=self.aws_session_token,
            config=construct_boto_client_retry_config(self.max_attempts),
        )


def aws_clients() -> AwsClientsResource:
    """The resource configured from the environment; the region as the AWS SDKs read it
    (``AWS_REGION`` first, which boto3 alone would ignore)."""
    from stedi_assets.storage.s3 import aws_region

    return AwsClientsResource(region_name=aws_region())
