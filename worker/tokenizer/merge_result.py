"""What a merge returns (both families)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

SUMMARY_NAME = "merge_summary.json"


@dataclass
class MergeResult:
    output: str
    family: str
    base: str
    base_size: int
    added: int
    size: int
    skipped_existing: int = 0
    dropped_unreachable: int = 0
    source: str = ""
    copied_files: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        return (
            f"merge: {self.base_size} + {self.added} = {self.size} tokens ({self.family}); "
            f"{self.skipped_existing} already in the base, {self.dropped_unreachable} dropped as "
            f"unreachable; {self.seconds:.1f} s -> {self.output}"
        )
