"""`--shard I/N`: a deterministic partition of a scan by path, so N plain CI jobs split one tree.

A walked item belongs to shard `crc32(path) % N + 1`. The hash is of the path as the walker yields
it (the root as typed joined with the path inside it), so every job must name the same roots the
same way; then the N shards hold every file exactly once, whatever machine runs them. CRC-32, not
`hash()`: Python salts str hashes per process, which would reshuffle files between jobs.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scanner.walk import WalkItem


@dataclass(frozen=True)
class Shard:
    index: int  # 1-based, as CI matrices count
    count: int

    def __post_init__(self) -> None:
        if not 1 <= self.index <= self.count:
            raise ValueError(f"--shard {self.index}/{self.count}: I must be in 1..N")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """'I/N' -> Shard(I, N), or a ValueError that says what is expected."""
        index, sep, count = text.partition("/")
        if not (sep and index.strip().isdigit() and count.strip().isdigit()):
            raise ValueError(f"--shard {text!r}: expected I/N, e.g. 1/4 (1 <= I <= N)")
        return cls(int(index), int(count))

    def owns(self, path: str) -> bool:
        # surrogateescape: file names with undecodable bytes hash by their original bytes.
        return zlib.crc32(path.encode("utf-8", "surrogateescape")) % self.count == self.index - 1

    def select(self, items: Iterable[WalkItem]) -> Iterator[WalkItem]:
        """This shard's files and walk errors, in walk order."""
        return (item for item in items if self.owns(item.path))

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"
