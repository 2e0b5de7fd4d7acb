"""cpt-panel backend: API, run-config schema and shared services."""

__version__ = "0.1.0"
