"""``python -m elbolab``: the same as the ``elbolab`` command."""

import sys

from elbolab.cli import main

sys.exit(main())
