"""The rewrite engine: reading files, running rules in one pass, applying fixes, reporting."""
