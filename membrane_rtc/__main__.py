"""``python -m membrane_rtc``: the ``membrane-rtc`` command."""

import sys

from .ops.cli import main

sys.exit(main())
