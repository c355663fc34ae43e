"""Metrics. `scores` needs no judge; `support` and `citations` are judged and import
ragas, so import them only where a judge runs."""
