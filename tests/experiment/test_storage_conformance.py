"""Every built-in storage passes the storage conformance suite."""

from __future__ import annotations

import itertools
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
