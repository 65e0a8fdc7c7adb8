"""Every built-in storage passes the storage conformance suite.

The PostgreSQL case runs against a throw-away server started from the machine's PostgreSQL packages
(``postgres_url`` in conftest.py; .ci/run installs them), or against ``NASFORGE_TEST_POSTGRES_URL``
when it names a server and a database from which the test may create and drop databases, e.g.
``postgresql+psycopg2://postgres@127.0.0.1:5432/postgres``; with neither, it is skipped.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from nasforge.experiment import InMemoryStorage, OptunaStorage, Storage
from nasforge.testing import StorageConformance

_ids = itertools.count()


class TestInMemory(StorageConformance):
    @pytest.fixture
    def make_storage(self):  # type: ignore[no-untyped-def]
        return InMemoryStorage


class TestSQLite(StorageConformance):
    @pytest.fixture
    def make_storage(self, tmp_path: Path):  # type: ignore[no-untyped-def]
        return lambda: OptunaStorage(f"sqlite:///{tmp_path / f'db{next(_ids)}.db'}")

    @pytest.fixture
    def reopen_storage(self):  # type: ignore[no-untyped-def]
        def reopen(storage: Storage) -> Storage:  # another process opening the same database
            assert isinstance(storage, OptunaStorage)
            return OptunaStorage(storage.url)

        return reopen


@pytest.fixture(scope="session")
def server_url(request: pytest.FixtureRequest) -> str:
    """``NASFORGE_TEST_POSTGRES_URL`` if set, else the throw-away server of ``postgres_url``
    (conftest.py: started from the machine's PostgreSQL packages; skipped without them)."""
    return os.environ.get("NASFORGE_TEST_POSTGRES_URL") or str(request.getfixturevalue("postgres_url"))


class TestPostgreSQL(StorageConformance):
    @pytest.fixture
    def make_storage(self, server_url: str) -> Iterator[Callable[[], Storage]]:
        import sqlalchemy

        admin = sqlalchemy.create_engine(server_url, isolation_level="AUTOCOMMIT")
        made: list[str] = []

        def make() -> Storage:  # a new, empty database for every storage
            name = f"nasforge_conformance_{os.getpid()}_{next(_ids)}"
            with admin.connect() as conn:
                conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
            made.append(name)
            url = sqlalchemy.engine.make_url(server_url).set(database=name)
            return OptunaStorage(url.render_as_string(hide_password=False))

        yield make
        with admin.connect() as conn:
            for name in made:  # FORCE: the storages' connection pools may still hold connections
                conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    @pytest.fixture
    def reopen_storage(self) -> Callable[[Storage], Storage]:
        def reopen(storage: Storage) -> Storage:  # another process opening the same database
            assert isinstance(storage, OptunaStorage)
            return OptunaStorage(storage.url)

        return reopen
