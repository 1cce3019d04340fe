"""``/metrics``: Prometheus figures of the live server, for whoever holds the metrics token.

Served only when ``TANDEM_METRICS_TOKEN`` is set and the request carries it as
``Authorization: Bearer <token>``; any other request gets the same 404 as an unknown URL, so
the endpoint's existence is not revealed. The token is compared in constant time.
prometheus-client is imported at the first scrape, so a server nobody scrapes never holds it.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

import persistence
from server.identity import Rule
from server.live import fanout_lag
from server.services import Services

from .guard import rule
from .responses import credentials, services

if TYPE_CHECKING:
    from prometheus_client.core import HistogramMetricFamily, Metric

    from server.histogram import Histogram

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DatabaseFigures:
    """What only the database knows, read once per scrape (None: it did not answer)."""

    plans_behind: int
    updates_behind: int
    oldest_waiting: datetime | None
    outbox_depth: int
    at: datetime


def _read_figures(s: Session) -> DatabaseFigures:
    plans, updates, oldest = persistence.worker_lag(session=s)
    return DatabaseFigures(
        plans_behind=plans,
        updates_behind=updates,
        oldest_waiting=oldest,
        outbox_depth=persistence.outbox_depth(session=s),
        at=datetime.now(UTC),
    )


async def database_figures(svc: Services, timeout: float = 2.0) -> DatabaseFigures | None:
    task = asyncio.ensure_future(svc.store.read(_read_figures))
    done, _ = await asyncio.wait([task], timeout=timeout)
    if task not in done:
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        return None
    if task.exception() is not None:
        log.warning("metrics: reading the worker's lag and the outbox failed: %s", task.exception())
        return None
    return task.result()


class LiveCollector:
    """Reads the figures from the services at each scrape."""

    def __init__(self, svc: Services, figures: DatabaseFigures | None = None) -> None:
        self.svc = svc
        self.figures = figures

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

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
        yield _histogram(
            "tandem_event_loop_lag_seconds",
            f"How late a timer asking to wake every {lag.interval} s woke.",
            lag.histogram,
        )
        yield GaugeMetricFamily(
            "tandem_event_loop_lag_max_seconds", "The longest event-loop lag seen.", lag.worst
        )
        yield _histogram(
            "tandem_commit_seconds",
            "How long the log append of a group commit took (waiting for the writer included).",
            self.svc.store.commit_seconds,
        )
        figures = self.figures
        if figures is not None:
            # The worker's lag is the cluster's, read from the database: the same on every
            # process, whichever holds the worker lease.
            waited = (
                (figures.at - figures.oldest_waiting).total_seconds()
                if figures.oldest_waiting is not None
                else 0.0
            )
            yield GaugeMetricFamily(
                "tandem_worker_lag_seconds",
                "How long the oldest update not yet in the plans' tables has waited (0: none).",
                max(0.0, waited),
            )
            yield GaugeMetricFamily(
                "tandem_worker_lag_updates",
                "Updates logged but not yet in the plans' tables and commitment history.",
                figures.updates_behind,
            )
            yield GaugeMetricFamily(
                "tandem_worker_lag_plans",
                "Plans whose tables are behind their update log.",
                figures.plans_behind,
            )
            yield GaugeMetricFamily(
                "tandem_outbox_depth",
                "Notifications queued and not yet sent.",
                figures.outbox_depth,
            )
        yield GaugeMetricFamily(
            "tandem_metrics_database_up",
            "1 when the database answered this scrape's questions in time, else 0.",
            1 if figures is not None else 0,
        )


def _histogram(name: str, documentation: str, histogram: Histogram) -> HistogramMetricFamily:
    from prometheus_client.core import HistogramMetricFamily

    family = HistogramMetricFamily(name, documentation)
    family.add_metric(
        [], [(_le(bound), count) for bound, count in histogram.cumulative()], histogram.total
    )
    return family


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

    svc = services(request)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LiveCollector(svc, await database_figures(svc)))
    if svc.rooms.bus is not None:
        # From a batch's publication by the process that logged it to its application here.
        registry.register(fanout_lag())
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
