"""Threads: how many cores a pool may use, and every thread facescan starts leaves SIGINT and
SIGTERM to the main thread.

The kernel hands a signal sent to the process to any thread that does not block it. Python runs
its handler in the main thread, but only once that thread is back in the interpreter: when the
signal lands on an onnxruntime or decode thread while the main thread waits in a read that does
not return (a named pipe, a stalled network mount), Ctrl-C and SIGTERM did nothing (1 scan in
about 20 hung so in the signal tests). A thread inherits its creator's signal mask, so threads
started inside `signals_to_main_thread()` never receive these two, and the main thread's read is
interrupted instead.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

SIGNALS = {signal.SIGINT, signal.SIGTERM}


def available_cores() -> int:
    """Cores this process may run on (a container's CPU set, not the host's count): the size of
    every decode pool, the scanner's and the trainer's."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


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


@contextmanager
def sigterm_handler_kept() -> Iterator[None]:
    """The SIGTERM handler of the main thread as it was before the block, for a library that sets
    its own while it starts. ray.init does (sys.exit(15): a scan stopped by a CI job would exit
    15 with a report marked failed, not 143 and terminated) and Ray's core adds one that prints
    a stack dump. A SIGTERM that comes meanwhile goes to the old handler too. What SIGTERM means
    (exit status, report state) stays the command layer's: `scanner.stops.raised` sets the
    handler this keeps."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread can set handlers, and ray.init does not try then
        return
    previous = signal.getsignal(signal.SIGTERM)
    try:
        yield
    except SystemExit as e:
        if e.code == signal.SIGTERM and callable(previous):
            previous(signal.SIGTERM, None)
        raise
    finally:
        if previous is not None:  # None: set outside Python, cannot be put back
            signal.signal(signal.SIGTERM, previous)
