"""The benchmarks of SPEC §7: each prints its figures as one JSON line apiece."""
