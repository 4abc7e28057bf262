"""Writing a file so that a crash never leaves half of it, with the permissions any other
new file of the user would get."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write_text(path: Path, text: str) -> Path:
    """Writes `text` to a temporary file beside `path`, then renames it over `path`: a
    reader sees the old file or the new one, never a part. mkstemp makes its file
    owner-only (0600); it is given the umask's mode first, so that teammates on shared
    storage can read records as they read any other file of the user."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
