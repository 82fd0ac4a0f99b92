"""Locating data that ships with pcapsleuth (report templates)."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

__all__ = ["templates_dir"]


def templates_dir() -> Path:
    """The directory of the built-in jinja2 templates.

    Installed, they are package data of ``pcapsleuth._reports``; in a source checkout they are
    ``reports/templates`` next to the package.
    """
    try:
        root = importlib.resources.files("pcapsleuth._reports")
        path = Path(str(root)) / "templates"
        if path.is_dir():
            return path
    except ModuleNotFoundError:
        pass
    return Path(__file__).resolve().parent.parent / "reports" / "templates"
