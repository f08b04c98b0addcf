"""Start-up and graceful shutdown, owned by the ASGI lifespan.

On SIGTERM the server drains before uvicorn waits for open connections: WebSocket clients get close
1012, SSE streams end, pending long polls return, new publishes are refused with 503, and the
publishes already accepted are kept before the process exits: nothing is acknowledged and dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import FrameType
from typing import Any

from fastapi import FastAPI
from prometheus_client import Gauge
from sqlalchemy.ext.asyncio import AsyncEngine

from .bus import Bus, create_bus
from .features.accounts import Accounts
from .features.chat import Chat
from .features.notifications import Notifier
from .features.presence import Presence
from .features.publishing import Publisher
from .features.shared_state import SharedState
from .features.typing import Typing
from .identity.budgets import Budgets
from .identity.limits import ConnectionLimits
from .identity.setup import build_guest_room, build_tokens
from .observability.bounds import watch_bounds
from .observability.logging import install_expected_disconnects, install_redaction
from .observability.metrics import Metrics
from .server.access_line import install_quick_access_format
from .server.held import answer_when_due, uvicorn_server
from .services import Services
from .settings import Settings
from .startfailure import database_needed
from .store.db import create_engine, create_session_factory
from .store.journal import SqlJournal
from .store.locks import JournalInUse, WriterLock
from .store.migrate import upgrade_to_head
from .store.sqlite_appender import SqliteAppender, sqlite_file
from .store.tickets import SqlRevocations, SqlTicketClaims
from .web.errors import server_error_body
from .web.middleware import SECURITY_HEADERS
from .web.poll import PollCore
from .web.polllane import PollLane
from .web.sse import SLOW_READER_ERRORS

log = logging.getLogger(__name__)

GC_THRESHOLD = 20_000


async def build_services(settings: Settings) -> Services:
    url = settings.resolved_database_url
    engine = create_engine(url)
    file = sqlite_file(engine)
    # Without Redis this process orders events: it must be the journal's only writer.
    writer = None if settings.redis_url else await _writer_lock(engine, file)
    if settings.migrate_on_start:
        await upgrade_to_head(url)  # under the migration lock: nodes may start together
    sessions = create_session_factory(engine)
    journal = SqlJournal(
        engine, appender=SqliteAppender(file) if file is not None else None, writer=writer
    )
    if writer is not None:
        writer.on_lost = _stop_writing
        writer.watch()
    bus = create_bus(settings, journal)
    shared = SharedState.for_settings(settings)
    tokens = build_tokens(
        settings, shared.redis, SqlTicketClaims(sessions), SqlRevocations(sessions)
    )
    publisher = Publisher(bus, shared.rate_limiter, settings.max_event_bytes)
    connections = ConnectionLimits(
        settings.max_connections_per_user, settings.max_connections_per_ip, settings.max_connections
    )
    metrics = Metrics(per_delivery=settings.metrics_per_delivery)
    bus.commits.on_commit = metrics.commit_batch.observe
    metrics.long_polls_waiting.set_function(lambda: bus.polls.parked)
    _archive_metrics(bus, metrics)
    tokens.revocations.gauge(metrics.registry)
    publisher.metrics = metrics
    accounts = Accounts(sessions)
    budgets = Budgets.for_settings(settings)
    publisher.address_budget = budgets.publish_address
    services = Services(
        settings=settings,
        engine=engine,
        bus=bus,
        shared=shared,
        tokens=tokens,
        publisher=publisher,
        connections=connections,
        metrics=metrics,
        accounts=accounts,
        chat=Chat(sessions, bus, publisher, accounts, budgets),
        presence=Presence(
            publisher,
            settings.presence_lease,
            shared.membership,
            grace=settings.presence_grace,
            max_entries=settings.max_presence_entries,
            max_per_address=settings.max_presence_per_address,
        ),
        typing=Typing(publisher, shared.typing, budgets.typing),
        notifications=Notifier(sessions, publisher, anyone=settings.app_tokens),
        budgets=budgets,
        guests=build_guest_room(settings, shared.redis, tokens.revocations),
        checks=[("bus", bus.check), ("database", journal.check), ("shared", shared.check)],
        closers=[journal.close, *([writer.release] if writer is not None else [])],
    )
    watch_bounds(services)
    return services


def _archive_metrics(bus: Bus, metrics: Metrics) -> None:
    """On Redis: how far the SQL archive is behind (publishes get 503 when it is too far)."""
    archiver = getattr(bus.backend, "archiver", None)
    if archiver is None:
        return
    lag = Gauge(
        "fourcast_archive_lag_events",
        "Events acknowledged on Redis and not yet in the SQL archive",
        registry=metrics.registry,
    )
    lag.set_function(lambda: archiver.lag)


async def _writer_lock(engine: AsyncEngine, file: Path | None) -> WriterLock:
    try:
        return await WriterLock.acquire(engine, file)
    except JournalInUse as exc:
        log.critical("refusing to start: %s", exc)
        await engine.dispose()
        raise


def _stop_writing(reason: str) -> None:
    """Another process writes the journal now (it took the lock while the database restarted):
    this one, which may no longer order events, shuts down as on SIGTERM. Its publishes are
    refused meanwhile (`WriterLost`)."""
    log.critical("shutting down: %s", reason)
    signal.raise_signal(signal.SIGTERM)


def tune_gc() -> None:
    """Fewer, cheaper collections: start-up objects are frozen out of the collector's view, and
    the youngest generation is collected less often, so a busy fan-out is not paused every few
    hundred allocations (the pauses show as delivery latency spikes)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, 20, 20)


async def drain(services: Services) -> None:
    if services.connections.draining:
        return
    log.info("draining: refusing new work, closing streams")
    services.connections.draining = True
    await services.bus.drain()


def _restarting() -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """The answer to a request still held at the shutdown timeout (app/server/held.py): as a
    publish refused while draining, 503 `unavailable` with `Retry-After`."""
    body, request_id = server_error_body("unavailable", "server is restarting")
    return body, [
        (b"content-type", b"application/json"),
        (b"content-length", b"%d" % len(body)),
        (b"retry-after", b"2"),
        (b"x-request-id", request_id.encode()),
        *SECURITY_HEADERS,
    ]


def _chain_sigterm(loop: asyncio.AbstractEventLoop, on_term: Callable[[], None]) -> Any:
    """Run `on_term` on SIGTERM/SIGINT, then whatever handler was there (uvicorn's)."""
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def handler(sig: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(on_term)
        prior = previous.get(signal.Signals(sig))
        if callable(prior):
            prior(sig, frame)

    for sig in previous:
        with contextlib.suppress(ValueError):  # not the main thread (e.g. under a test runner)
            signal.signal(sig, handler)
    return previous


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    install_redaction()
    install_quick_access_format()
    install_expected_disconnects(SLOW_READER_ERRORS)
    with database_needed(settings.resolved_database_url):
        services = await build_services(settings)
    app.state.services = services
    await services.bus.start()
    await services.presence.start()
    await services.tokens.start()
    if settings.guests_allowed:
        await services.guests.start(services.accounts.made_since)
    await services.notifications.recover()  # those a stopped server left without their event
    # One poll core for the ASGI route and, where the server offers it, the quick lane.
    app.state.poll_core = core = PollCore(services)
    app.state.quick_lane = PollLane(core)
    tune_gc()
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[None]] = set()

    def on_term() -> None:
        task = loop.create_task(drain(services))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        if server is not None and not held:  # once: a second signal is uvicorn's force exit
            held.append(answer_when_due(server, _restarting))

    previous = _chain_sigterm(loop, on_term)
    server = uvicorn_server(previous.get(signal.SIGTERM))
    held: list[asyncio.TimerHandle | None] = []
    try:
        yield
    finally:
        for timer in held:
            if timer is not None:
                timer.cancel()
        app.state.quick_lane = None
        core.close()
        await drain(services)
        await services.presence.stop()
        await services.tokens.stop()
        await services.bus.stop()
        for close in services.closers:
            await close()
        await services.engine.dispose()
        await services.shared.close()
        for sig, handler in previous.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(sig, handler)
