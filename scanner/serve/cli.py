"""`facescan serve [options]`: the options, gathered into `ServeOptions` (the scan settings
mapped by `scanner.cli_options`, as `facescan`'s are) and handed to `scanner.serve.server`.
Registered on the `facescan` command group by `scanner.cli`; imports nothing heavy (Starlette
and uvicorn load when the command runs)."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any

import typer

from scanner import cli_options as opts
from scanner.engines.base import EngineSettings
from scanner.serve.options import TOKEN_ENV, ServeOptions
from scanner.settings import ScanSettings

# What each option defaults to when not given (a dataclass field's default, read without a model).
DEFAULTS: dict[str, Any] = {
    f.name: f.default for f in (*fields(ServeOptions), *fields(EngineSettings))
}
EPILOG = (
    "Endpoints: POST /v1/scan (multipart images or one raw image; one JSONL report row per "
    "image), GET /healthz, /readyz, /metrics (Prometheus), /openapi.json, and the review page "
    "at /. SIGTERM or Ctrl-C drains the requests in flight, then exits 143 or 130; exit 2 when "
    "the service cannot start (bad option, model, port in use)."
)


@opts.with_settings(after="port", engine="batcher")
def serve(
    settings: ScanSettings,
    host: Annotated[
        str, typer.Option(help="Address to listen on (loopback unless told otherwise).")
    ] = DEFAULTS["host"],
    port: Annotated[int, typer.Option(help="Port (0: any free port).")] = DEFAULTS["port"],
    batch_size: Annotated[
        int, typer.Option(help="Most images per inference batch (shared across requests).")
    ] = 32,
    batch_wait_ms: Annotated[
        float, typer.Option(help="Longest wait for more images to fill a batch, in ms.")
    ] = DEFAULTS["batch_wait_ms"],
    queue: Annotated[
        int, typer.Option(help="Images held at once; past it, 503 with Retry-After.")
    ] = DEFAULTS["queue"],
    max_request_bytes: Annotated[
        int, typer.Option(help="Largest request body; past it, 413.")
    ] = DEFAULTS["max_request_bytes"],
    max_buffered_bytes: Annotated[
        int, typer.Option(help="Upload bytes held at once, all requests; past it, 503.")
    ] = DEFAULTS["max_buffered_bytes"],
    max_files: Annotated[
        int, typer.Option(help="Most images in one request; past it, 413.")
    ] = DEFAULTS["max_files"],
    token_file: Annotated[
        Path | None,
        typer.Option(
            help=f"Require 'Authorization: Bearer TOKEN' with a token of this file (one a "
            f"line) or of ${TOKEN_ENV}, for /v1/scan and /metrics."
        ),
    ] = None,  # fmt: skip
    cors_origin: Annotated[
        list[str] | None,
        typer.Option(help="Let pages of this origin call the API (repeatable) [default: none]."),
    ] = None,
    keep: Annotated[
        Path | None,
        typer.Option(help="Write every upload into this folder as SHA256.EXT [default: never]."),
    ] = None,
    debug: opts.Debug = False,
) -> int:
    """Serve the scanner over HTTP, with a review page for moderators (needs facescan[serve])."""
    from scanner.serve.server import serving

    options = ServeOptions(
        settings,
        host=host,
        port=port,
        queue=queue,
        max_request_bytes=max_request_bytes,
        max_buffered_bytes=max_buffered_bytes,
        max_files=max_files,
        token_file=token_file,
        cors_origins=tuple(cors_origin or ()),
        keep=keep,
        debug=debug,
    )
    return serving(options)
