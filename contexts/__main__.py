"""The host CLI: `python -m contexts --help`."""

import sys

from .cli import main

sys.exit(main())
