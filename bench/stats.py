"""Repeated measurements and the rows of the results table."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Series:
    """The values of one measure over the repetitions of a run of the suite.

    ``bound_hit``: at least one repetition was stopped at the time bound, so the
    values are lower bounds (a time) or upper bounds (a rate): "did not finish".
    """

    values: tuple[float, ...]
    bound_hit: bool = False

    @classmethod
    def of(cls, values: Sequence[float], bound_hit: bool = False) -> Series:
        """A series of ``values`` (at least one)."""
        if not values:
            raise ValueError("a series needs at least one value")
        return cls(tuple(float(v) for v in values), bound_hit)

    @property
    def known(self) -> tuple[float, ...]:
        """The values that are numbers (a ratio to zero, say, is not)."""
        return tuple(v for v in self.values if math.isfinite(v))

    @property
    def valid(self) -> bool:
        """True when at least one value is a number."""
        return bool(self.known)

    @property
    def median(self) -> float:
        """The median of the values that are numbers (NaN if none is)."""
        return statistics.median(self.known) if self.known else math.nan

    @property
    def low(self) -> float:
        """The smallest value that is a number."""
        return min(self.known) if self.known else math.nan

    @property
    def high(self) -> float:
        """The largest value that is a number."""
        return max(self.known) if self.known else math.nan

    def format(self) -> str:
        """``median [min .. max]``, marked when run once or stopped at the time bound."""
        if not self.valid:
            return "n/a"
        marks = ["1 run"] if len(self.known) == 1 else []
        if self.bound_hit:
            marks.append("bound hit")
        text = number(self.median)
        if len(self.known) > 1:
            text += f" [{number(self.low)} .. {number(self.high)}]"
        return f"{text} ({'; '.join(marks)})" if marks else text

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "median": self.median if self.valid else None,
            "min": self.low if self.valid else None,
            "max": self.high if self.valid else None,
            "values": [v if math.isfinite(v) else None for v in self.values],
            "bound_hit": self.bound_hit,
        }


def ratios(numerators: Series, denominators: Series) -> Series:
    """Per-repetition ratios (paired by position; the shorter series sets the count)."""
    pairs = list(zip(numerators.values, denominators.values, strict=False))
    if len(denominators.values) == 1:  # a reference run once (it hit its bound): pair with it
        pairs = [(n, denominators.values[0]) for n in numerators.values]
    values = [n / d if d else math.nan for n, d in pairs]
    return Series.of(values, numerators.bound_hit or denominators.bound_hit)


def number(value: float) -> str:
    """A compact, readable number: 3 significant digits, thousands separated."""
    if not math.isfinite(value):
        return "n/a"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    if magnitude == 0:
        return "0"
    return f"{value:.3g}"


def judge(series: Series, passes: bool) -> bool | None:
    """``passes``, or None when ``series`` has no number to judge."""
    return passes if series.valid else None


@dataclass(frozen=True)
class Row:
    """One line of the results table: rqdag's figure, its reference, and their ratio.

    ``met`` is None when the row has no target (context) or could not be judged.
    """

    section: str
    measure: str
    unit: str
    rqdag: Series | None
    reference: Series | None
    reference_name: str
    ratio: Series | None = None
    target: str = ""
    met: bool | None = None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "section": self.section,
            "measure": self.measure,
            "unit": self.unit,
            "rqdag": self.rqdag.to_dict() if self.rqdag else None,
            "reference": self.reference.to_dict() if self.reference else None,
            "reference_name": self.reference_name,
            "ratio": self.ratio.to_dict() if self.ratio else None,
            "target": self.target,
            "met": self.met,
            "note": self.note,
        }


def ratio_row(
    section: str,
    measure: str,
    unit: str,
    rqdag: Series,
    reference: Series,
    reference_name: str,
    *,
    at_least: float | None = None,
    at_most: float | None = None,
    digits: int = 2,
    note: str = "",
) -> Row:
    """A row judged by the median of the paired ratios rqdag / reference: met when it is
    ``at_least`` (or ``at_most``) the target, shown with ``digits`` decimals, and no
    repetition hit its bound."""
    ratio = ratios(rqdag, reference)
    if at_least is not None:
        target, passes = f">= {at_least:.{digits}f}", ratio.median >= at_least
    elif at_most is not None:
        target, passes = f"<= {at_most:.{digits}f}", ratio.median <= at_most
    else:
        raise ValueError("a ratio row needs at_least or at_most")
    return Row(
        section=section,
        measure=measure,
        unit=unit,
        rqdag=rqdag,
        reference=reference,
        reference_name=reference_name,
        ratio=ratio,
        target=target,
        met=passes and not ratio.bound_hit,
        note=note,
    )


@dataclass
class SectionResult:
    """The rows of one section, or why it was skipped."""

    key: str
    title: str
    rows: list[Row] = field(default_factory=list)
    skipped: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "key": self.key,
            "title": self.title,
            "skipped": self.skipped,
            "rows": [r.to_dict() for r in self.rows],
            "notes": list(self.notes),
        }
