"""The signals that stop `lsq up` gracefully (a second one kills at once)."""

import signal

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


caught: list[int] = []
"""Stop signals `hold_stop_signals` noted before the runtime took them over."""


def hold_stop_signals() -> None:
    """Note stop signals instead of dying of them, until the runtime's event
    loop takes them (`lsq.control.serve` then acts on what was noted). For
    a runtime that starts services before its loop exists (a warm start):
    blocking the signals instead would pass the mask on to those services,
    and the default action would kill the runtime and leave them unowned."""

    def note(signum: int, frame: object) -> None:
        caught.append(signum)

    for sig in STOP_SIGNALS:
        signal.signal(sig, note)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
