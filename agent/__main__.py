"""``python -m agent``: the same as ``hourglass-agent``."""

import sys

from agent.cli import main

sys.exit(main())
