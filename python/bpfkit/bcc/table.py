"""``bcc.table``: bpfkit's map classes under BCC's module name."""

from bpfkit.table import *  # noqa: F403
from bpfkit.table import __all__  # noqa: F401
