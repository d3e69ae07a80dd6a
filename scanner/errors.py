"""Every known error and the exit code it means: the one place the commands map them (httpie's
`ExitStatus`), `facescan` and `facescan-train` alike. A leaf module: anything in facescan (and
the trainer) may import it.

`FacescanError` is a problem the user can fix (a bad option, a missing model, an unwritable
report): its message is printed as it is and the command exits 2. Anything else that escapes is
an internal error: one line, or the traceback with `--debug`.
"""

from __future__ import annotations

import enum


class Exit(enum.IntEnum):
    CLEAN = 0  # nothing flagged, every file read
    FLAGGED = 1  # at least one image flagged (takes precedence over errors)
    ERROR = 2  # nothing flagged but some file unreadable, or the scan could not run
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)
    TERMINATED = 143  # SIGTERM: a CI timeout or a cancelled job (128 + SIGTERM)
    # facescan-train reads the same contract: done, a check it exists to make failed, or it
    # could not run (the same values: aliases).
    OK = 0
    CHECK_FAILED = 1
    CANNOT_RUN = 2


class FacescanError(Exception):
    """A problem the user can fix; the message says what and how."""

    exit = Exit.ERROR  # the status it ends a command with


class UsageError(FacescanError):
    """An option, or a combination of options, that cannot work."""


class SettingError(UsageError, ValueError):
    """A scan setting out of its range: a usage error on the command line, a ValueError to a
    program that builds a `Scanner` itself."""


class InvalidModelError(FacescanError):
    """The model file is missing, unreadable or lacks what facescan needs to run it."""


class EngineError(FacescanError):
    """The engine's workers cannot run (a Ray worker whose set-up fails): the scan stops once,
    instead of making every file an error row."""


class ReportError(FacescanError):
    """The report (or another file facescan writes) cannot be written where or how the user
    asked."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread. A KeyboardInterrupt, so that every cleanup written
    for Ctrl-C (workers stopped, the report closed as interrupted) runs for it too."""


def exit_status(error: BaseException) -> Exit:
    """The exit status of a command ended by `error`: the one map, for `facescan` (every
    command) and `facescan-train`. Anything that is not a FacescanError is an internal error."""
    if isinstance(error, Terminated):
        return Exit.TERMINATED
    if isinstance(error, KeyboardInterrupt):
        return Exit.INTERRUPTED
    if isinstance(error, FacescanError):
        return error.exit
    return Exit.ERROR
