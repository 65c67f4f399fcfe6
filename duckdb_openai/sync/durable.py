"""Replacing a file so that a reader sees the old one or the new one, never a part, and a crash leaves
one of them whole: the new file is written beside the old, flushed to disk, moved over it with
`os.replace` (atomic on one file system), and the folder flushed too.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["fsync_file", "replace"]


def fsync_file(path: Path) -> None:
    """Flush `path` (a file or a folder) to disk."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def replace(temporary: Path, final: Path) -> None:
    """Flush `temporary` to disk and move it over `final`."""
    fsync_file(temporary)
    os.replace(temporary, final)
    fsync_file(final.parent)
