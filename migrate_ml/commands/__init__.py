"""Subcommands of ``migrate-ml``: one module each, discovered by :mod:`migrate_ml.cli`."""
