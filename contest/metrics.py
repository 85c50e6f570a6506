"""Prometheus text metrics: request counts and latency histograms per route, plus gauges.

Each process renders its own figures (scrape every worker: one worker per container/pod, or
``quiz serve --workers N`` behind one port where a scrape reaches one of them at random).
Derived series: ``quiz_answers_total`` (acknowledged answers; ``rate()`` of it is answers/s),
``quiz_finishes_total``; the flusher's batch sizes and lag are histograms; 503s are counted per
backend in ``quiz_backend_errors_total{backend="redis"|"database"}``.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Awaitable, Callable

from aiohttp import web

__all__ = ["BACKEND_ERROR", "BATCH_BUCKETS", "LAG_BUCKETS_MS", "Histogram", "Metrics", "metrics_middleware"]

# which backend a 503 came from ("redis" / "database"): set by the error middleware
# (contest/web/errors.py), counted here
BACKEND_ERROR: web.RequestKey[str] = web.RequestKey("backend_error", str)

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
BATCH_BUCKETS = (1, 10, 100, 500, 1000, 2500, 5000, 10000)
LAG_BUCKETS_MS = (10, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000)
_ANSWER_ROUTE = "/api/v1/attempts/{aid}/answers"
_FINISH_ROUTES = ("/api/v1/attempts/{aid}/finish", "/api/v1/attempts/{aid}/submit")


class Histogram:
    """A cumulative histogram for the text format (no labels)."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        for i, bound in enumerate(self.bounds):
            if value <= bound:
                self.counts[i] += 1
                break
        else:
            self.counts[-1] += 1
        self.sum += value

    def render(self, name: str) -> list[str]:
        lines = [f"# TYPE {name} histogram"]
        cumulative = 0
        for bound, n in zip((*self.bounds, float("inf")), self.counts, strict=True):
            cumulative += n
            le = "+Inf" if bound == float("inf") else repr(bound)
            lines.append(f'{name}_bucket{{le="{le}"}} {cumulative}')
        lines.append(f"{name}_sum {self.sum:g}")
        lines.append(f"{name}_count {cumulative}")
        return lines


class Metrics:
    def __init__(self) -> None:
        self.requests: dict[tuple[str, int], int] = defaultdict(int)
        self.buckets: dict[str, list[int]] = defaultdict(lambda: [0] * (len(_BUCKETS) + 1))
        self.sums: dict[str, float] = defaultdict(float)
        self.errors: dict[str, int] = defaultdict(int)
        self.lane_requests = 0  # answer requests served by the answer lane (contest/web/answer_lane.py)
        # connections the front door closed on its own, by reason (contest/web/front_door.py):
        # header_timeout, body_timeout, idle, evicted, malformed
        self.connections_closed: dict[str, int] = defaultdict(int)
        self.connections_open = 0

    def observe(self, route: str, status: int, seconds: float) -> None:
        self.requests[(route, status)] += 1
        self.buckets[route][bisect_left(_BUCKETS, seconds)] += 1  # the first bucket with seconds <= bound
        self.sums[route] += seconds

    def render(self, gauges: dict[str, float], histograms: dict[str, Histogram] | None = None,
               counters: dict[str, float] | None = None) -> str:
        answers = sum(n for (route, status), n in self.requests.items() if route == _ANSWER_ROUTE and status == 200)
        finishes = sum(n for (route, status), n in self.requests.items()
                       if route in _FINISH_ROUTES and status == 200)
        lines = ["# TYPE quiz_answers_total counter", f"quiz_answers_total {answers}",
                 "# TYPE quiz_finishes_total counter", f"quiz_finishes_total {finishes}",
                 "# TYPE quiz_answer_lane_requests_total counter",
                 f"quiz_answer_lane_requests_total {self.lane_requests}"]
        lines += ["# TYPE quiz_connections_open gauge", f"quiz_connections_open {self.connections_open}",
                  "# TYPE quiz_connections_closed_total counter"]
        lines += [f'quiz_connections_closed_total{{reason="{reason}"}} {n}'
                  for reason, n in sorted(self.connections_closed.items())]
        for name, value in sorted((counters or {}).items()):
            lines += [f"# TYPE {name} counter", f"{name} {value}"]
        for name, histogram in sorted((histograms or {}).items()):
            lines += histogram.render(name)
        lines.append("# TYPE quiz_http_requests_total counter")
        for (route, status), n in sorted(self.requests.items()):
            lines.append(f'quiz_http_requests_total{{route="{route}",status="{status}"}} {n}')
        lines.append("# TYPE quiz_http_request_seconds histogram")
        for route, counts in sorted(self.buckets.items()):
            cumulative = 0
            for bound, n in zip((*_BUCKETS, float("inf")), counts, strict=True):
                cumulative += n
                le = "+Inf" if bound == float("inf") else repr(bound)
                lines.append(f'quiz_http_request_seconds_bucket{{route="{route}",le="{le}"}} {cumulative}')
            lines.append(f'quiz_http_request_seconds_sum{{route="{route}"}} {self.sums[route]:.6f}')
            lines.append(f'quiz_http_request_seconds_count{{route="{route}"}} {cumulative}')
        lines.append("# TYPE quiz_backend_errors_total counter")
        for kind, n in sorted(self.errors.items()):
            lines.append(f'quiz_backend_errors_total{{backend="{kind}"}} {n}')
        for name, value in sorted(gauges.items()):
            lines.append(f"# TYPE {name} gauge")
            lines.append(f"{name} {value}")
        return "\n".join(lines) + "\n"


def metrics_middleware(metrics: Metrics) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def middleware(request: web.Request,
                         handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        start = time.perf_counter()
        info = request.match_info.route.resource
        route = info.canonical if info is not None else "unmatched"
        status = 500
        try:
            response = await handler(request)
            status = response.status
            if status == 503:
                # the error middleware names the backend that was down (redis / database)
                metrics.errors[request.get(BACKEND_ERROR, "unavailable")] += 1
            return response
        finally:
            metrics.observe(route, status, time.perf_counter() - start)

    return middleware
