"""Benchmarking: host and device runners, and parsing of what they print."""
