"""The Redis backend: a Redis Stream per channel orders, numbers and keeps its events.

Keys (prefix `fourcast`):
- `fourcast:ch:<channel>`: the channel's stream (streams.py), trimmed with `MAXLEN ~ history_size`.
- `fourcast:epoch`: the epoch marker (epoch.py).
- `fourcast:seq`: the highest seq any stream was given; a stream created (again) starts above it.
- `fourcast:ephemeral`: the one pub/sub channel carrying live-only events between nodes.
- `fourcast:node:<id>:wake`: a per-node stream whose only use is to interrupt the reader's XREAD.
- `fourcast:idem:<key>`: remembered idempotent publishes, with a TTL (idempotency.py).
- `fourcast:fence:<node>:<n>`: set only once an append's reply was lost (recovery.py).

A node's connections to Redis, and how its commands fail fast, are in connections.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

from ..archive import Archiver
from ..backend import BusUnavailable, Deliver, Journal
from ..failfast import FailFast
from .connections import ERRORS, Commands, connect, warn_if_evicting
from .epoch import APPEND, KnownEpochs
from .live import LivePath, Restart
from .reads import StreamReads
from .recovery import MAX_LOST_BYTES, Recovery
from .streams import StreamId, entry_epoch, parse_id
from .tail import Tails
from .writes import Writes

log = logging.getLogger(__name__)


STOP_GRACE = 1.0
"""Seconds the reader and subscriber get to end once cancelled, before their connections are
closed under them."""


class RedisBackend(Commands, StreamReads, LivePath, Writes):
    def __init__(
        self,
        url: str,
        journal: Journal,
        history_size: int,
        *,
        prefix: str = "fourcast",
        pool_size: int = 64,
        archive_max: int = 100_000,
        archive_flush_timeout: float = 30.0,
        archive_linger: float = 0.0,
        ack_after_journal: bool = False,
        idempotency_ttl: float = 24 * 3600,
        tail_events: int = 256,
        tail_max_bytes: int = 64 << 20,
        lost_max_bytes: int = MAX_LOST_BYTES,
        stream_idle: float = 7 * 24 * 3600,
        command_timeout: float = 1.5,
    ) -> None:
        self._history = history_size
        self._journal = journal
        self._prefix = prefix
        self._node = uuid.uuid4().hex
        self._deliver: Deliver = lambda events: None
        self.idempotency_prefix = f"{prefix}:idem:"
        self._idempotency_ttl_ms = max(1, int(idempotency_ttl * 1000))
        self._stream_idle_ms = max(1, int(stream_idle * 1000)) if stream_idle > 0 else 0
        """Streams expire this long after their last append (0: never; streams.py)."""
        self.claims: dict[str, bytes] = {}
        """Idempotency key name -> the claim this node's publish holds on it, until it ends
        (idempotency.py): the append goes ahead only while the key holds that claim."""
        self.redis, self._reader, self._subscriber = connect(url, pool_size, command_timeout)
        self.command_timeout = command_timeout
        self._append = self.redis.register_script(APPEND)
        self._marker = f"{prefix}:epoch"
        self._top_key = f"{prefix}:seq"
        self._epochs_key = f"{prefix}:epochs"  # written by the scripts: the marker's name + "s"
        self._epochs_id: StreamId = (0, 0)
        self._ephemeral_channel = f"{prefix}:ephemeral"
        self._wake_key = f"{prefix}:node:{self._node}:wake"
        # channel -> id of the last entry handed to the hub (or the head when listening began).
        self._positions: dict[str, StreamId] = {}
        self._live_epochs: dict[str, int] = {}
        self._reader_epoch: int | None = None
        self._reading = False
        """The reader is connected and following the streams (the tails are current)."""
        self.tails = Tails(min(tail_events, history_size), tail_max_bytes)
        """The newest events of the listened channels, answering polls near the head (tail.py)."""
        self._wake_id: StreamId = (0, 0)
        self._wake_sent = False
        self._subscribed = asyncio.Event()
        self.on_restart: Restart | None = None
        self.archiver = Archiver(journal, archive_max, archive_flush_timeout, archive_linger)
        self._ack_after_journal = ack_after_journal
        self.fail_fast = FailFast((BusUnavailable,))
        """Only failures to reach Redis count (BusUnavailable is raised for nothing else)."""
        self.epoch = 0
        """The epoch of this node's latest append (0 before the first)."""
        self.known_epochs = KnownEpochs()
        self._fence_prefix = f"{prefix}:fence:{self._node}:"
        self._batches = 0
        self.recovery = Recovery(
            self.redis,
            self.command,
            self.key,
            self.archiver,
            history_size,
            self.fail_fast,
            lost_max_bytes,
        )
        self._tasks: list[asyncio.Task[None]] = []

    def key(self, channel: str) -> str:
        return f"{self._prefix}:ch:{channel}"

    # Lifecycle

    async def start(self, deliver: Deliver) -> None:
        self._deliver = deliver
        await self.known_epochs.load(self._journal)  # before the reader's first epoch check
        for name, loop in (
            ("redis-reader", self._read_loop),
            ("redis-ephemeral", self._ephemeral_loop),
        ):
            self._tasks.append(asyncio.create_task(loop(), name=name))
        self._tasks.append(self.archiver.start())
        self._tasks.append(self.known_epochs.start())
        for task in self._tasks:
            task.add_done_callback(self._task_ended)
        await warn_if_evicting(self.redis)
        # Best effort: a node that starts while Redis is down keeps retrying in the background.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), self.command_timeout)

    async def stop(self) -> None:
        live = self._tasks[:2]  # the reader and the ephemeral subscriber
        for task in live:
            task.cancel()
        await self.recovery.stop()
        await self.archiver.stop()
        await self.known_epochs.stop()
        _, stuck = await asyncio.wait(live, timeout=STOP_GRACE) if live else ((), ())
        if stuck:
            # A blocking read can miss its cancellation (redis-py 8.1 loses it now and then):
            # closed under it, the read ends, and the task is cancelled again.
            log.warning("redis reader did not stop when asked; closing its connections")
            for client in (self._reader, self._subscriber):
                with contextlib.suppress(*ERRORS):
                    await client.connection_pool.disconnect()
            for task in stuck:
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        self._deliver = lambda events: None
        for client in (self._reader, self._subscriber, self.redis):
            with contextlib.suppress(*ERRORS):
                # The flag: a pool given to a client (the command pool) is not closed otherwise.
                await client.aclose(close_connection_pool=True)

    @staticmethod
    def _task_ended(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("%s ended", task.get_name(), exc_info=task.exception())

    async def check(self) -> None:
        await self.command(self.redis.ping, idempotent=True)

    # The live path (live.py)

    async def listen(self, channel: str) -> None:
        if channel in self._positions:
            return
        key = self.key(channel)
        head = await self.command(
            lambda: self.redis.xrevrange(key, "+", "-", count=1), idempotent=True
        )
        # Start at the head as of now: the caller reads history after this returns, and the hub
        # drops the overlap by cursor, so nothing between the two is lost.
        if channel not in self._positions:
            self._positions[channel] = parse_id(head[0][0]) if head else (0, 0)
            if head:
                epoch = entry_epoch(head[0][1])
                self._live_epochs[channel] = epoch
                self.tails.start(channel, epoch, parse_id(head[0][0])[1])
        await self._wake_reader()

    async def unlisten(self, channel: str) -> None:
        # Lazily: the reader leaves the stream out of its next XREAD; no need to interrupt it.
        self._positions.pop(channel, None)
        self._live_epochs.pop(channel, None)
        self.tails.drop(channel)
