"""TensorFlow brought up once, without its start-up chatter unless --debug.

Importing TensorFlow writes CUDA probing, absl and oneDNN notes straight to file descriptor 2
from C++ (TF_CPP_MIN_LOG_LEVEL does not reach the lines written before absl is initialised), so
the import runs with descriptor 2 pointed at a temporary file: dropped when the import works,
replayed on stderr when it fails (then it may explain why). `--debug` shows everything. Python
callers that never call `configure` get the quiet import too, but their environment is left as
it is.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from typing import IO

# Python loggers that warn about things a facescan user cannot act on (retracing, deprecations).
NOISY_LOGGERS = ("tensorflow", "absl", "tf2onnx", "keras")
_state = {"debug": False, "loaded": False}


def configure(debug: bool) -> None:
    """Called by every command before anything imports TensorFlow."""
    _state["debug"] = debug
    if not debug:
        # 3 drops C++ errors too: the cuInit failure of a machine without a GPU is one.
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def load() -> None:
    """Import TensorFlow and Keras (idempotent); quietly unless configured with debug."""
    if _state["loaded"]:
        return
    if _state["debug"]:
        import keras  # noqa: F401
        import tensorflow  # noqa: F401
    else:
        failure: BaseException | None = None
        with _descriptor_2_captured() as sink:
            try:
                import keras  # noqa: F401
                import tensorflow  # noqa: F401
            except BaseException as e:  # replayed below, once descriptor 2 is back
                failure = e
            sink.seek(0)
            chatter = sink.read().decode(errors="replace")
        if failure is not None:
            sys.stderr.write(chatter)
            raise failure
        for name in NOISY_LOGGERS:
            logging.getLogger(name).setLevel(logging.ERROR)
    _state["loaded"] = True


@contextlib.contextmanager
def _descriptor_2_captured() -> Iterator[IO[bytes]]:
    """File descriptor 2 (what C++ writes to) into a temporary file for the duration."""
    with tempfile.TemporaryFile() as sink:
        sys.stderr.flush()
        try:
            saved = os.dup(2)
        except OSError:  # no descriptor 2 (a daemon): nothing to hide it from
            yield sink
            return
        os.dup2(sink.fileno(), 2)
        try:
            yield sink
        finally:
            os.dup2(saved, 2)
            os.close(saved)
