"""Benchmark scripts: measurements that take minutes belong here, not in the unit tests."""
