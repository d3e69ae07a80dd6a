"""Every known error and the exit code it means: the one place the command maps them (httpie's
`ExitStatus`). A leaf module: anything in facescan may import it.

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


class FacescanError(Exception):
    """A problem the user can fix; the message says what and how."""


class UsageError(FacescanError):
    """An option, or a combination of options, that cannot work."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread. A KeyboardInterrupt, so that every cleanup written
    for Ctrl-C (workers stopped, the report closed as interrupted) runs for it too."""
