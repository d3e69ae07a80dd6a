"""When Ctrl-C (SIGINT) and SIGTERM stop the `facescan` program: never in the middle of
something that would leave a traceback or an earlier run's report behind.

From the program's first line (`hold`, in scanner/__main__.py, before typer, numpy or the
command line's modules load) both signals are only recorded. A command takes them where it can
stop cleanly (`raised`: the scan once its report is at hand, so that the report is written
and marked incomplete; `facescan serve` at once): a signal recorded before is raised there,
and the program exits 130 (143) whatever the command returned (`exit_status`). Without
`hold` (a program using the library) nothing is recorded, and `raised` only maps SIGTERM.

Before the first line, while Python itself starts (tens of milliseconds, more on a loaded
machine), the signal is Python's: the process dies of it, or Python prints its own start-up
error, and facescan has touched no file (an earlier report is left as it was).
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

from scanner.errors import Exit, Terminated

SIGNALS = (signal.SIGINT, signal.SIGTERM)
held: list[int] = []  # signals received while held, first first


def hold() -> None:
    """From now on SIGINT and SIGTERM are recorded, not raised (main thread only)."""
    for number in taken():
        signal.signal(number, record)


def taken() -> list[int]:
    """The signals facescan handles: both, less one ignored since the process started (a shell
    starts a background job with SIGINT ignored, and Ctrl-C must not stop it)."""
    return [number for number in SIGNALS if signal.getsignal(number) is not signal.SIG_IGN]


def record(number: int, frame: object) -> None:
    held.append(number)


def stop(number: int) -> KeyboardInterrupt:
    """The exception a signal raises: KeyboardInterrupt for Ctrl-C, Terminated for SIGTERM (a
    KeyboardInterrupt too, so that every cleanup written for Ctrl-C runs for it)."""
    return Terminated() if number == signal.SIGTERM else KeyboardInterrupt()


def raise_stop(number: int, frame: object) -> None:
    raise stop(number)


@contextmanager
def raised() -> Iterator[None]:
    """Inside, SIGINT raises KeyboardInterrupt and SIGTERM Terminated, and a signal held before
    is raised on entering; the handlers before are put back on leaving. Outside the main
    thread (an embedding application) the signals are left alone."""
    try:
        previous = {number: signal.signal(number, raise_stop) for number in taken()}
    except ValueError:  # not the main thread
        yield
        return
    try:
        if held:
            raise stop(held.pop(0))
        yield
    finally:
        for number, handler in previous.items():
            if handler is not None:  # None: set outside Python, cannot be put back
                signal.signal(number, handler)


def exit_status(code: int) -> int:
    """The program's exit status: `code`, unless a signal held since came after the command
    had stopped taking them (it finished meanwhile): then the signal's (130, 143)."""
    if not held:
        return code
    return Exit.TERMINATED if held[0] == signal.SIGTERM else Exit.INTERRUPTED
