"""The rule profiles a run can apply (``rules.py`` holds the resource that carries the choice)."""

from enum import StrEnum


class Profile(StrEnum):
    # Lower-case member names: Dagster's run config spells enum values by member name.
    privacy = "privacy"
    udacity = "udacity"
