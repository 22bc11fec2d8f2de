"""The signals that stop `lsq up` gracefully (a second one kills at once)."""

import signal

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
