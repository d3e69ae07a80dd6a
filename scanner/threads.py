"""Every thread facescan starts leaves SIGINT and SIGTERM to the main thread.

The kernel hands a signal sent to the process to any thread that does not block it. Python runs
its handler in the main thread, but only once that thread is back in the interpreter: when the
signal lands on an onnxruntime or decode thread while the main thread waits in a read that does
not return (a named pipe, a stalled network mount), Ctrl-C and SIGTERM did nothing (1 scan in
about 20 hung so in the signal tests). A thread inherits its creator's signal mask, so threads
started inside `signals_to_main_thread()` never receive these two, and the main thread's read is
interrupted instead.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

SIGNALS = {signal.SIGINT, signal.SIGTERM}


@contextmanager
def signals_to_main_thread() -> Iterator[None]:
    """Threads started inside (Python's or a library's, such as onnxruntime's pool) block
    SIGINT and SIGTERM for life; the calling thread's own mask is restored on leaving, and a
    signal that arrived meanwhile is delivered to it then."""
    if not hasattr(signal, "pthread_sigmask"):  # Windows: no per-thread masks
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def load_threaded_libraries() -> None:
    """Import the libraries that start threads of their own as they load (numpy's OpenBLAS pool,
    onnxruntime's), so that those threads block the signals too. Call before anything else
    imports them: a command does, first thing."""
    with signals_to_main_thread():
        try:
            import numpy  # noqa: F401
            import onnxruntime  # noqa: F401
        except ImportError:  # a broken install: the import that needs it says so, with context
            pass
