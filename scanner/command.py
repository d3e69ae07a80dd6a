"""The `facescan` command: options in, report written, exit code out.

`guarded` is the one place where every error becomes an exit code (scanner.errors.Exit), for
every command (`facescan serve` too), during the set-up and during the work: a FacescanError is
one clear line and exit 2, Ctrl-C 130, SIGTERM 143, anything else an internal error (its
traceback with --debug). Whatever ends the scan, the report is closed and says whether the scan
completed: a crash never leaves a report that claims to be complete.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from functools import partial
from typing import TYPE_CHECKING, Any

from scanner import console
from scanner.errors import Exit, FacescanError, Terminated
from scanner.options import ScanOptions
from scanner.walk import walk

if TYPE_CHECKING:
    from scanner.reports import Report
    from scanner.scan import Scanner


def run(options: ScanOptions) -> int:
    """Scan, report, summarise; the exit status a CI job gates on."""
    return guarded(partial(scan_command, options), options.debug)


def guarded(command: Callable[[], int], debug: bool) -> int:
    """`command`'s exit status, or the one its error means: every facescan command runs here."""
    try:
        with sigterm_interrupts():
            return command()
    except FacescanError as e:
        console.fail(str(e))
        return Exit.ERROR
    except Terminated:
        return Exit.TERMINATED
    except KeyboardInterrupt:
        return Exit.INTERRUPTED
    except Exception as e:
        if debug:
            raise
        console.fail(f"internal error: {type(e).__name__}: {e} (rerun with --debug)")
        return Exit.ERROR


def scan_command(options: ScanOptions) -> int:
    from scanner.decode import silence_pillow_warnings
    from scanner.reports import format_for, open_report
    from scanner.scan import Scanner
    from scanner.session import resolve_model

    options.check()
    silence_pillow_warnings()
    if options.out is not None:
        format_for(options.out, options.format)  # a bad name fails before the model loads
    with closing(
        Scanner(
            resolve_model(options.model, options.precision),
            provider=options.provider,
            threshold=options.threshold,
            workers=options.workers,
            batch_size=options.batch_size,
            threads=options.threads,
            limits=options.limits,
            cache=options.cache,
            use_metadata=not options.ignore_metadata,
            engine=options.engine,
            ray_address=options.ray_address,
            actors=options.actors,
            progress=options.debug,
        )
    ) as scanner:
        model = console.model_info(scanner)
        report = open_report(options.out, options.format, model) if options.out else None
        tally = console.Tally(scanner.info.positive_label, keep_flagged=options.out is None)
        scan_into(scanner, options, report, tally, model)
    return finish(options, tally, model)


def scan_into(
    scanner: Scanner,
    options: ScanOptions,
    report: Report | None,
    tally: console.Tally,
    model: dict[str, Any],
) -> None:
    """Every result into the report and the tally. The report is closed however the scan
    ends, and its summary says how: complete, interrupted, terminated or failed."""
    walked = (options.paths, options.exclude, options.follow_symlinks, options.shard_part())
    state = "failed"
    try:
        with (
            console.Progress(partial(walk, *walked), enabled=not options.quiet) as advance,
            closing(scanner.scan(*walked)) as results,
        ):
            for result in results:
                if report is not None:
                    report.write(result)
                tally.add(result)
                advance()
        state = "complete"
    except Terminated:
        state = "terminated"
    except KeyboardInterrupt:
        state = "interrupted"
    finally:
        tally.finish(state)
        if report is not None:
            close_report(report, tally.summary(model), failing=state == "failed")


def close_report(report: Report, summary: dict[str, Any], failing: bool) -> None:
    """Close the report; when the scan is already failing, a second error closing it must not
    hide the first one."""
    try:
        report.close(summary)
    except FacescanError:
        if not failing:
            raise


def finish(options: ScanOptions, tally: console.Tally, model: dict[str, Any]) -> int:
    summary = tally.summary(model)
    if not options.quiet:
        console.print_summary(tally, summary, options.out)
        if tally.files == 0:
            console.warn(f"no image found in {', '.join(options.paths)}")
    if options.out is None:
        console.print_flagged(tally.flagged)
    if tally.state == "terminated":
        return Exit.TERMINATED
    if tally.state == "interrupted":
        return Exit.INTERRUPTED
    if options.exit_zero:
        return Exit.CLEAN
    if tally.flagged_count:
        return Exit.FLAGGED
    return Exit.ERROR if tally.errors else Exit.CLEAN


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """SIGTERM (a CI timeout, a cancelled job, `kill`) raises Terminated in the main thread, so
    it ends the scan the way Ctrl-C does: workers stopped, the report closed as incomplete."""

    def terminate(signum: int, frame: object) -> None:
        raise Terminated

    try:
        previous = signal.signal(signal.SIGTERM, terminate)
    except ValueError:  # not the main thread (an embedding application): leave it alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
