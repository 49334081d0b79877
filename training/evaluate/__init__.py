"""Offline evaluation: temporal split, full-catalogue metrics, baselines, search proxy, report (training/README.md)."""
