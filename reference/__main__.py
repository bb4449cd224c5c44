"""``python -m migrate_ml_reference ...``: the same commands as ``migrate-ml sample-data`` / ``migrate-ml reference``."""

import sys

from .cli import main

sys.exit(main(sys.argv[1:]))
