"""``/metrics``: Prometheus figures of the live server, for whoever holds the metrics token.

Served only when ``TANDEM_METRICS_TOKEN`` is set and the request carries it as
``Authorization: Bearer <token>``; any other request gets the same 404 as an unknown URL, so
the endpoint's existence is not revealed. The token is compared in constant time.
prometheus-client is imported at the first scrape, so a server nobody scrapes never holds it.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from typing import TYPE_CHECKING

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from server.identity import Rule
from server.services import Services

from .guard import rule
from .responses import credentials, services

if TYPE_CHECKING:
    from prometheus_client.core import Metric


class LiveCollector:
    """Reads the figures from the services at each scrape."""

    def __init__(self, svc: Services) -> None:
        self.svc = svc

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        rooms = self.svc.rooms
        yield GaugeMetricFamily(
            "tandem_open_connections", "Open websocket connections.", len(rooms.connections())
        )
        yield GaugeMetricFamily("tandem_open_rooms", "Documents loaded in memory.", rooms.loaded)
        yield CounterMetricFamily(
            "tandem_updates_applied",
            "Updates from clients and the server made durable and forwarded.",
            self.svc.applied.updates,
        )
        lag = self.svc.lag
        histogram = HistogramMetricFamily(
            "tandem_event_loop_lag_seconds",
            f"How late a timer asking to wake every {lag.interval} s woke.",
        )
        histogram.add_metric(
            [],
            [(_le(bound), count) for bound, count in lag.cumulative()],
            sum_value=lag.total,
        )
        yield histogram
        yield GaugeMetricFamily(
            "tandem_event_loop_lag_max_seconds", "The longest event-loop lag seen.", lag.worst
        )


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


def _authorised(request: Request) -> bool:
    expected = services(request).settings.metrics_token
    given = credentials(request).bearer or ""
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


@rule(Rule.PUBLIC)  # the metrics token is the credential, checked here
async def metrics(request: Request) -> Response:
    if not _authorised(request):
        raise HTTPException(404)
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(LiveCollector(services(request)))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
