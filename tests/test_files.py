"""Records and generated data are written whole, with the user's usual permissions."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from semillero.files import atomic_write_text


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_an_atomic_write_gets_the_mode_the_umask_gives(
    umask: int, mode: int, tmp_path: Path
) -> None:
    old = os.umask(umask)
    try:
        path = atomic_write_text(tmp_path / "record.json", "{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == mode
    assert path.read_text() == "{}" and [p.name for p in tmp_path.iterdir()] == ["record.json"]
