"""Store tests run once against SQLite and once against a real PostgreSQL server."""

from __future__ import annotations

from pathlib import Path

import pytest

# pytest allows pytest_plugins only in the top conftest (others edit it): import the fixture instead
from tests.support.postgres import postgres_server  # noqa: F401  (a session fixture)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new, empty store location: a SQLite file path or a fresh PostgreSQL database URL."""
    if request.param == "sqlite":
        return str(tmp_path / "results.db")
    return request.getfixturevalue("postgres_server").new_database()
