"""AWS plumbing: boto3 clients from dagster-aws resources, provisioning, Athena."""
