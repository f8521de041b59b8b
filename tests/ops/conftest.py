"""The running system the operations tests share (one for the package: it takes seconds)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ops.system import System, running_system


@pytest.fixture(scope="package")
def system(pg_template: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """PostgreSQL, Mosquitto (TLS), a collector and a dispatcher, with traffic."""
    yield from running_system(pg_template, Path(tmp_path_factory.mktemp("system")))
