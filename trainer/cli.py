import sys


def main() -> None:
    sys.exit("facescan-train: not yet implemented")
