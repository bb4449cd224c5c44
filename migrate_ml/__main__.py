import sys

from migrate_ml.cli import main

sys.exit(main())
