"""Small statistics and the result record of one figure."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence


def best(samples: Sequence[float]) -> float:
    return min(samples)


def median(samples: Sequence[float]) -> float:
    return float(statistics.median(samples))


def spread(samples: Sequence[float], unit: str = "s", scale: float = 1.0) -> str:
    """``min / median / max`` of the samples, for the detail column."""
    values = sorted(samples)
    return (
        f"min {values[0] * scale:.3f}{unit} med {median(values) * scale:.3f}{unit} "
        f"max {values[-1] * scale:.3f}{unit} (n={len(values)})"
    )


@dataclass
class Figure:
    """One key of the report: its value (a ratio), the goal, and how it was obtained."""

    key: str
    value: Optional[float]
    goal: float
    what: str
    details: List[str] = field(default_factory=list)
    skipped: Optional[str] = None

    @property
    def met(self) -> Optional[bool]:
        return None if self.value is None else self.value <= self.goal


def as_json_numbers(figures: Sequence[Figure]) -> Dict[str, float]:
    return {f.key: round(f.value, 4) for f in figures if f.value is not None}
