"""Benchmarks: scripts run by hand (not tests); each prints its figures."""
