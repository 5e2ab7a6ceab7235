"""``bcc.usdt``: bpfkit's USDT contexts under BCC's module name."""

from bpfkit.usdt import *  # noqa: F403
from bpfkit.usdt import USDT  # noqa: F401
