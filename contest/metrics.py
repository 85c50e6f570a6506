"""Prometheus text metrics: request counts and latency histograms per route, plus gauges."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Awaitable, Callable

from aiohttp import web

__all__ = ["Metrics", "metrics_middleware"]

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    def __init__(self) -> None:
        self.requests: dict[tuple[str, int], int] = defaultdict(int)
        self.buckets: dict[str, list[int]] = defaultdict(lambda: [0] * (len(_BUCKETS) + 1))
        self.sums: dict[str, float] = defaultdict(float)
        self.errors: dict[str, int] = defaultdict(int)

    def observe(self, route: str, status: int, seconds: float) -> None:
        self.requests[(route, status)] += 1
        counts = self.buckets[route]
        for i, bound in enumerate(_BUCKETS):
            if seconds <= bound:
                counts[i] += 1
                break
        else:
            counts[-1] += 1
        self.sums[route] += seconds

    def render(self, gauges: dict[str, float]) -> str:
        lines = ["# TYPE quiz_http_requests_total counter"]
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
                metrics.errors["unavailable"] += 1
            return response
        finally:
            metrics.observe(route, status, time.perf_counter() - start)

    return middleware
