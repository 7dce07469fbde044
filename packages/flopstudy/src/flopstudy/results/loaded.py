"""What reading results gives back: the validated rows and the problems met on the way (files and rows left
out, each named)."""

from __future__ import annotations

import dataclasses

from .rows import ResultRow

__all__ = ["LoadedResults", "Problem"]


@dataclasses.dataclass(frozen=True)
class Problem:
    """Something left out of the analysis: where (file, file:line, or a row's description) and why."""

    source: str
    message: str

    def __str__(self) -> str:
        return f"{self.source}: {self.message}"


@dataclasses.dataclass(frozen=True)
class LoadedResults:
    """Validated rows (every status) and the problems met while reading them."""

    rows: tuple[ResultRow, ...]
    problems: tuple[Problem, ...]
    sources: tuple[str, ...]

    def merged(self, other: LoadedResults) -> LoadedResults:
        return LoadedResults(self.rows + other.rows, self.problems + other.problems, self.sources + other.sources)
