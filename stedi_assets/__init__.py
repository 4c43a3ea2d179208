"""The STEDI Human Balance Analytics lakehouse as a Dagster asset graph on Spark."""
