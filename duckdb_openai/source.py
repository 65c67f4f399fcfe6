"""Placeholder until the StackQL form lands."""

from __future__ import annotations

from typing import Any

__all__ = ["attach_catalog"]


def attach_catalog(con: Any, client: Any) -> None:
    return None
