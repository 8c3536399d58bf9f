"""Locust scenarios and the capacity baseline (make bench)."""
