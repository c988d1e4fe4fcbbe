"""Test support code: a fake device-side adb endpoint and the pytest fixtures built on it."""
