"""The event bus: ordered per-channel logs with cursors, and local fan-out. Knows nothing of HTTP."""

from __future__ import annotations

from ..settings import Settings
from .backend import Backend, BusUnavailable, Journal, NullJournal, ReadResult
from .bus import Bus
from .capabilities import SyncReads
from .commit import BusDraining, BusOverloaded
from .events import Event, EventError
from .idempotency import IdempotencyStore, JournalIdempotencyStore
from .polls import PollResult
from .sink import Sink, SinkOverflow

__all__ = [
    "Backend",
    "Bus",
    "BusDraining",
    "BusOverloaded",
    "BusUnavailable",
    "Event",
    "EventError",
    "Journal",
    "NullJournal",
    "PollResult",
    "ReadResult",
    "Sink",
    "SinkOverflow",
    "SyncReads",
    "create_bus",
]


def create_bus(settings: Settings, journal: Journal) -> Bus:
    """The backend named by the settings: Redis when `redis_url` is set, else in-process."""
    backend: Backend
    idempotency: IdempotencyStore
    if settings.redis_url:
        # Imported lazily: the redis client stays optional for single-node runs.
        from .redis import RedisBackend, RedisIdempotencyStore

        backend = RedisBackend(
            settings.redis_url,
            journal,
            history_size=settings.history_size,
            idempotency_ttl=settings.idempotency_ttl,
            archive_max=settings.archive_max_queued,
            archive_flush_timeout=settings.archive_flush_timeout,
            archive_linger=settings.archive_linger_ms / 1000,
            ack_after_journal=settings.ack_after_journal,
            tail_events=settings.redis_tail_events,
            tail_max_bytes=settings.redis_tail_max_bytes,
            lost_max_bytes=settings.max_pending_publish_bytes,
            stream_idle=settings.redis_stream_idle_seconds,
            command_timeout=settings.redis_command_timeout,
        )
        idempotency = RedisIdempotencyStore(backend, ttl=settings.idempotency_ttl)
        restartable: RedisBackend | None = backend
    else:
        from .memory import MemoryBackend

        backend = MemoryBackend(
            journal,
            history_size=settings.history_size,
            max_channels=settings.bus_max_channels,
            max_bytes=settings.bus_max_bytes,
            idle=settings.bus_channel_idle,
        )
        idempotency = JournalIdempotencyStore(
            journal, ttl=settings.idempotency_ttl, max_bytes=settings.idempotency_max_bytes
        )
        restartable = None
    bus = Bus(
        backend,
        idempotency,
        commit_linger=settings.commit_linger_ms / 1000,
        commit_max_batch=settings.commit_max_batch,
        max_pending_publishes=settings.max_pending_publishes,
        max_pending_bytes=settings.max_pending_publish_bytes,
        max_read_bytes=settings.poll_max_bytes,
        max_held_channels=settings.bus_max_channels,
        max_ephemeral_bytes=settings.ephemeral_max_bytes,
    )
    if restartable is not None:
        restartable.on_restart = bus.hub.restart
    return bus
