"""An exact latency histogram in whole microseconds.

Locust's own percentiles round response times above 100 ms to tens and keep whole milliseconds
below, which cannot tell 0.8 ms from 1.4 ms. This keeps one counter per microsecond value (a few
thousand distinct values in practice), so percentiles are exact to the microsecond and histograms
from several processes merge by adding counters.
"""

from __future__ import annotations

import math
from collections import Counter


class LatencyHistogram:
    """Counts of latencies in microseconds; percentiles by the nearest-rank method."""

    def __init__(self, counts: dict[int, int] | None = None):
        self.counts: Counter[int] = Counter({int(k): int(v) for k, v in (counts or {}).items()})

    def record_ms(self, milliseconds: float) -> None:
        if milliseconds < 0 or math.isnan(milliseconds):
            raise ValueError(f"latency must be a non-negative number of milliseconds, got {milliseconds!r}")
        self.counts[round(milliseconds * 1000)] += 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def percentile_us(self, pct: float) -> int:
        """The smallest recorded value with at least pct % of the samples at or below it."""
        if not 0 < pct <= 100:
            raise ValueError(f"percentile must be in (0, 100], got {pct!r}")
        total = self.total
        if total == 0:
            raise ValueError("no samples recorded")
        rank = math.ceil(pct / 100 * total)
        seen = 0
        for value in sorted(self.counts):
            seen += self.counts[value]
            if seen >= rank:
                return value
        raise AssertionError("unreachable: rank <= total")

    def percentile_ms(self, pct: float) -> float:
        return self.percentile_us(pct) / 1000

    def max_ms(self) -> float:
        return max(self.counts) / 1000

    def merge(self, other: LatencyHistogram) -> LatencyHistogram:
        self.counts.update(other.counts)
        return self

    def to_dict(self) -> dict[str, int]:
        return {str(k): v for k, v in sorted(self.counts.items())}

    @classmethod
    def from_dict(cls, data: dict[str, int]) -> LatencyHistogram:
        return cls({int(k): v for k, v in data.items()})
