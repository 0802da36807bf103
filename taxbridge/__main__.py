"""``python -m taxbridge``: the ``taxbridge`` command."""

import sys

from taxbridge.cli import main

sys.exit(main())
