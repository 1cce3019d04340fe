"""A histogram kept in plain counters, read by ``/metrics`` at each scrape (prometheus-client
is imported only when someone scrapes, so the hot path never touches it)."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

# Upper bounds, in seconds, for the time of a database commit (Prometheus' ``le``; +Inf last).
COMMIT_BUCKETS = (
    *(0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02),
    *(0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5),
)


@dataclass
class Histogram:
    buckets: tuple[float, ...] = COMMIT_BUCKETS
    counts: list[int] = field(default_factory=list)
    total: float = 0.0

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * (len(self.buckets) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.total += value

    def cumulative(self) -> list[tuple[float, int]]:
        """(upper bound, samples at or below it), ending with (inf, all samples)."""
        out, running = [], 0
        for bound, count in zip((*self.buckets, float("inf")), self.counts, strict=True):
            running += count
            out.append((bound, running))
        return out
