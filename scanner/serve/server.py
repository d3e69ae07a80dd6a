"""`facescan serve`: load the model, listen, serve under uvicorn until told to stop.

The model loads before the port opens, so a bad model or option is exit 2 with one line, and
the socket is bound here (not by uvicorn) so a port in use is too; `--port 0` takes a free port,
and the line `facescan: serving on http://HOST:PORT` on stderr says which.

SIGTERM (or Ctrl-C) drains: uvicorn stops accepting connections, every request in flight gets
its answer, the batcher scores what is queued, and the process exits 143 (130 for Ctrl-C), the
scan command's codes for the same signals; a second signal stops without waiting.
"""

from __future__ import annotations

import socket
from functools import partial
from typing import TYPE_CHECKING

from scanner import console
from scanner.command import guarded
from scanner.errors import FacescanError, UsageError
from scanner.serve.options import ServeOptions
from scanner.threads import load_threaded_libraries

if TYPE_CHECKING:
    from scanner.serve.service import ScanService

# uvicorn's own log lines that say something an operator needs; access logs cost a line per
# request and are off.
LOG_LEVEL = "warning"


def run(options: ServeOptions) -> int:
    """`facescan serve` for a program: its exit status, errors included."""
    return guarded(partial(serving, options), options.debug)


def serving(options: ServeOptions) -> int:
    """Serve until told to stop (the command line's path, inside `guarded`)."""
    load_threaded_libraries()
    return serve(options)


def serve(options: ServeOptions) -> int:
    options.check()
    options.tokens()  # an unreadable token file fails before the model loads
    try:
        import uvicorn

        from scanner.serve.app import create_app  # Starlette, prometheus-client, multipart
    except ImportError as e:
        raise UsageError(
            f"facescan serve needs its extra: pip install 'facescan[serve]' ({e})"
        ) from None

    listener = listen(options.host, options.port)  # a port in use fails before the model loads
    app = create_app(build_service(options), options)
    host, port = listener.getsockname()[:2]
    config = uvicorn.Config(app, log_level=LOG_LEVEL, access_log=False, lifespan="on")
    console.err.print(f"facescan: serving on http://{url_host(host)}:{port}", markup=False)
    if options.host not in ("127.0.0.1", "localhost", "::1") and not options.tokens():
        console.warn(f"listening on {options.host} without --token-file: anyone who can reach it")
    uvicorn.Server(config).run(sockets=[listener])
    return 0


def build_service(options: ServeOptions) -> ScanService:
    """The scanner with the batcher engine, and the service over it (the model loaded)."""
    from scanner.decode import silence_pillow_warnings
    from scanner.scan import Scanner
    from scanner.serve.service import Admission, ScanService

    silence_pillow_warnings()
    scanner = Scanner(options.settings)  # with the batcher engine (the command line's choice)
    admission = Admission(options.queue, options.max_buffered_bytes)
    return ScanService(scanner, admission, options.keep)


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (IPv4 or IPv6), or a clear error."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as e:
        raise FacescanError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    sock.set_inheritable(True)
    return sock


def url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
