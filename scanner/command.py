"""The `facescan` command: options in, report written, exit code out.

`guarded` is the one place where every error becomes an exit code (scanner.errors.Exit), for
every command (`facescan serve` too), during the set-up and during the work: a FacescanError is
one clear line and exit 2, Ctrl-C 130, SIGTERM 143, anything else an internal error (its
traceback with --debug). Whatever ends the scan, the report is closed and says whether the scan
completed: a crash never leaves a report that claims to be complete.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager, nullcontext
from functools import partial
from typing import TYPE_CHECKING, Any

from scanner import console, policy, stops
from scanner.baseline import Baseline, Review, Update, update
from scanner.errors import Exit, FacescanError, Terminated, UsageError, exit_status
from scanner.threads import load_threaded_libraries
from scanner.walk import WalkItem

if TYPE_CHECKING:  # the types only: `facescan serve` runs here too, without the scan's options
    from scanner.options import ScanOptions
    from scanner.reports import Report
    from scanner.scan import Scanner
    from scanner.settings import ScanSettings
    from scanner.source import Source


def run(options: ScanOptions) -> int:
    """Scan, report, summarise; the exit status a CI job gates on."""
    return guarded(partial(scan_command, options), options.debug, stops_anywhere=False)


def guarded(command: Callable[[], int], debug: bool, stops_anywhere: bool = True) -> int:
    """`command`'s exit status, or the one its error means: every facescan command runs here.
    `stops_anywhere`: Ctrl-C and SIGTERM stop the command wherever it is (`facescan serve`);
    False: the command takes them where it can stop cleanly (`stops.raised`: the scan, once
    it can close its report as incomplete)."""
    try:
        with stops.raised() if stops_anywhere else nullcontext():
            return command()
    except FacescanError as e:
        console.fail(str(e))
        return exit_status(e)
    except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM (Terminated)
        return exit_status(e)
    except Exception as e:
        if debug:
            raise
        console.fail(f"internal error: {type(e).__name__}: {e} (rerun with --debug)")
        return exit_status(e)


def scan_command(options: ScanOptions) -> int:
    options.check()  # light: a usage error answers before numpy and onnxruntime load
    with empty_report_if_stopped(options), stops.raised():
        baseline, scanner = set_up(options)
    with closing(scanner):
        model = scanner.header
        report = open_output(options, model)
        positive = scanner.info.positive_label
        tally = console.Tally(positive, options.out is None, baseline is not None)
        review = None if baseline is None else Review(baseline, positive, options.update_baseline)
        scan_into(scanner, options, report, tally, model, review)
    updated = save_baseline(options, review, tally.state)
    return finish(options, tally, model, updated)


def set_up(options: ScanOptions) -> tuple[Baseline | None, Scanner]:
    """The baseline and the loaded Scanner, each setting checked before the model loads."""
    load_threaded_libraries()  # before the imports below load numpy

    from scanner.decode import silence_pillow_warnings
    from scanner.reports import format_for

    silence_pillow_warnings()
    if options.out is not None:
        chosen = format_for(options.out, options.format)  # a bad name fails before the model loads
        if options.thumbnails is not None and chosen.name != "html":
            raise UsageError("--thumbnails is for an HTML report (--out REPORT.html)")
    return load_baseline(options), open_scanner(options.settings)  # a bad baseline fails first


def open_scanner(settings: ScanSettings) -> Scanner:
    """The Scanner of these settings, its model loaded."""
    from scanner.scan import Scanner

    return Scanner(settings)


@contextmanager
def empty_report_if_stopped(options: ScanOptions) -> Iterator[None]:
    """A scan stopped while it sets up (Ctrl-C, SIGTERM or a crash, while the libraries and the
    model load: seconds with CUDA or Ray) still writes its --out report, empty and marked
    incomplete: an earlier run's report left there would pass for this one's. A setting refused
    (a missing model, a bad trust list) is exit 2 with its message and no report."""
    try:
        yield
    except FacescanError:
        raise
    except Terminated:
        leave_empty_report(options, "terminated")
        raise
    except KeyboardInterrupt:
        leave_empty_report(options, "interrupted")
        raise
    except BaseException:
        leave_empty_report(options, "failed")
        raise


def leave_empty_report(options: ScanOptions, state: str) -> None:
    """The --out report of a scan that ended (`state`) before its model loaded: no rows,
    and of the model only what the settings name (`ScanSettings.header`)."""
    model = options.settings.header()
    tally = console.Tally(model["labels"][1], keep_flagged=False)
    tally.finish(state)
    try:
        report = open_output(options, model)
        if report is not None:
            close_report(report, tally.summary(model), failing=True)
            console.warn(f"{state} while the scan set up: {options.out} holds no result")
    except Exception:  # noqa: BLE001 (best effort while stopping: the stop is what is reported)
        pass


def open_output(options: ScanOptions, model: dict[str, Any]) -> Report | None:
    """The --out report; --thumbnails (checked to come with HTML) goes to the HTML report."""
    from scanner.reports import open_report
    from scanner.reports.html import HtmlReport

    if options.out is None:
        return None
    if options.thumbnails is not None:
        return HtmlReport(options.out, model, options.thumbnails)
    return open_report(options.out, options.format, model)


def bar_total(source: Source) -> Callable[[], Iterator[WalkItem]] | None:
    """What the progress bar counts its total with: the items a second time, unless they
    cannot be read twice (a list on stdin or in a pipe)."""
    return partial(counted, source) if source.can_read_twice() else None


def counted(source: Source) -> Iterator[WalkItem]:
    """A bad list ends the count quietly: the scan itself reports the error."""
    try:
        yield from source.items()
    except FacescanError:
        return


def scan_into(
    scanner: Scanner,
    options: ScanOptions,
    report: Report | None,
    tally: console.Tally,
    model: dict[str, Any],
    review: Review | None = None,
) -> None:
    """Every result, marked by the baseline's review, into the report and the tally. The report
    is closed however the scan ends, and its summary says how: complete, interrupted,
    terminated or failed."""
    state = "failed"
    try:
        with (
            stops.raised(),  # a signal held while the report opened is raised here
            console.Progress(bar_total(options.source), enabled=not options.quiet) as advance,
            closing(scanner.scan(options.source)) as results,
        ):
            for result in results:
                if review is not None:
                    result = review(result)
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


def load_baseline(options: ScanOptions) -> Baseline | None:
    if options.baseline is None:
        return None
    if options.update_baseline and not options.baseline.exists():
        return Baseline()  # --update-baseline starts one
    return Baseline.load(options.baseline)


def save_baseline(options: ScanOptions, review: Review | None, state: str) -> Update | None:
    """Write the updated baseline (--update-baseline), only after a complete scan: an
    interrupted one has not seen every file."""
    if review is None or review.seen is None or options.baseline is None:
        return None
    if state != "complete":
        console.warn(f"baseline {options.baseline} not updated: the scan did not complete")
        return None
    updated = update(review, options.prune_baseline)
    updated.baseline.save(options.baseline)
    return updated


def finish(
    options: ScanOptions, tally: console.Tally, model: dict[str, Any], updated: Update | None
) -> int:
    summary = tally.summary(model)
    if not options.quiet:
        console.print_summary(tally, summary, options.out)
        if updated is not None:
            console.print_baseline_update(options.baseline, updated)
    if tally.files == 0 and tally.state == "complete":  # even with -q: a mistyped folder passes
        console.warn(f"no image found in {', '.join(options.source.names())}")
    if options.out is None:
        console.print_flagged(tally.flagged)
    if tally.state == "terminated":
        return Exit.TERMINATED
    if tally.state == "interrupted":
        return Exit.INTERRUPTED
    return policy.exit_status(options.fail_outcomes(), tally.flagged_by_baseline, len(tally.errors))
