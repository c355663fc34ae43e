"""Evaluation: the same retrieve/answer code the API uses -> metrics -> report, baseline gate."""

import service  # noqa: F401  (the offline environment, through ingest)
