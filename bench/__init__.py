"""Benchmark harness (``make bench``): the collector's cost against ``ss`` at 20k–120k sockets."""
