"""Development helpers shared by the tests, the benchmarks and the demo (not part of the distribution)."""
