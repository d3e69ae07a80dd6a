"""`Source`: what a scan reads, the one way into the walk for every front end (`facescan`, the
baseline commands, a program calling `Scanner.scan`).

PATHs are walked (`scanner.walk`: folders recursively, symbolic links inside them followed only
when asked), or a list names exactly the files to scan (`--files-from`, `scanner.filelist`: one
per line or NUL-separated, `-` for stdin); `exclude` globs apply to either, and `shard` keeps one
part of the result (`--shard I/N`). Light: the walk needs no Pillow.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from scanner.errors import UsageError
from scanner.filelist import listed
from scanner.walk import Shard, WalkItem, walk


@dataclass(frozen=True)
class Source:
    paths: tuple[str, ...] = ()  # files and folders, as the user typed them
    files_from: str | None = None  # a list of paths instead of PATHs; "-" is stdin
    null: bool = False  # the list is NUL-separated
    exclude: tuple[str, ...] = ()  # globs of names or relative paths to skip
    follow_symlinks: bool = False  # in folders (PATHs themselves are always followed)
    shard: Shard | None = None  # only this part of the files

    @classmethod
    def of(
        cls,
        paths: Iterable[str | os.PathLike[str]] = (),
        files_from: str | None = None,
        null: bool = False,
        exclude: Iterable[str] = (),
        follow_symlinks: bool = False,
        shard: Shard | str | None = None,
    ) -> Source:
        """A Source from what a command line or a program names (`shard` may be "I/N")."""
        if isinstance(shard, str):
            try:
                shard = Shard.parse(shard)
            except ValueError as e:
                raise UsageError(str(e)) from None
        return cls(
            tuple(os.fspath(p) for p in paths), files_from, null, tuple(exclude),
            follow_symlinks, shard,
        )  # fmt: skip

    def items(self) -> Iterator[WalkItem]:
        """Every candidate file and walk error, in walk (or list) order, streamed: call again
        to read it again (the progress bar counts it so)."""
        if self.files_from is not None:
            found = listed(self.files_from, self.null, self.exclude)
            return found if self.shard is None else self.shard.select(found)
        return walk(self.paths, self.exclude, self.follow_symlinks, self.shard)

    def can_read_twice(self) -> bool:
        """False for a list that is not a regular file (stdin, a pipe): a second reader would
        take entries from the scan."""
        return self.files_from is None or os.path.isfile(self.files_from)

    def names(self) -> list[str]:
        """What was asked for, in words (for "no image found in ...")."""
        return list(self.paths) or [f"the list {self.files_from}"]

    def problems(self) -> list[str]:
        """Everything that makes this source unreadable, each naming its option."""
        problems = []
        missing = [p for p in self.paths if not os.path.lexists(p)]
        if missing:
            problems.append(f"no such file or folder: {', '.join(missing)}")
        if self.files_from is not None and self.paths:
            problems.append("give PATHs or --files-from, not both")
        elif self.files_from is None and not self.paths:
            problems.append("nothing to scan: give PATHs or --files-from FILE")
        if self.files_from not in (None, "-"):  # a pipe is fine: --files-from <(git diff -z ...)
            if not os.path.exists(self.files_from):
                problems.append(f"--files-from {self.files_from}: no such file")
            elif os.path.isdir(self.files_from):
                problems.append(f"--files-from {self.files_from} is a folder, not a list")
        if self.null and self.files_from is None:
            problems.append("-0 describes a --files-from list")
        return problems
