"""``python -m migrate_ml_reference.harness SPEC.json``: see :mod:`.run`."""

import sys

from .run import main

sys.exit(main())
