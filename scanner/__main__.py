"""The `facescan` program: `python -m scanner` and the console script (`main`). Light: Ctrl-C
and SIGTERM are held (scanner.stops) before the command line's modules load."""

from scanner import stops


def main() -> None:
    stops.hold()
    from scanner.cli import main as command_line

    command_line()


if __name__ == "__main__":
    main()
