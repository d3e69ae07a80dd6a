import sys


def main() -> None:
    sys.exit("facescan: not yet implemented")
