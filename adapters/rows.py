"""What the file importers share: a refused row, named by its line number in the file."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RowError:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"
