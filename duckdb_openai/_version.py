"""The package version, kept in one place for the User-Agent and the CLI."""

__all__ = ["__version__"]

__version__ = "0.1.0"
