"""``python -m bpfkit``: the same as the ``bpfkit`` command."""

import sys

from .cli import main

sys.exit(main())
