"""The live path of the Redis backend: one XREAD loop per node over the channels it listens to,
handed to the hub, and the pub/sub loop carrying ephemeral events between nodes.

When the reader (re)connects it first confirms the epoch on its own connection (a connection cannot
outlive the server it was made to, so nothing read on it afterwards predates that check). If the
epoch changed, Redis may have lost data and numbered streams again: each channel's position goes
back to where the new epoch begins, and the first entry of a new epoch on a channel reaches its
subscribers after a `reset` (the hub's `restart`), never as a silent continuation. If it did not,
a channel whose stream went while the reader was away gets a reset too (positions.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from redis.asyncio import Redis

from ..backend import BusUnavailable, Deliver, event_from_json
from ..events import CHANNEL_RE, TYPE_RE, Event
from .epoch import CONFIRM_ONLY, KnownEpochs
from .positions import Positions, Restart
from .pubsub import follow
from .streams import Entry, StreamId, decode, entry_epoch, format_id, make_cursor, parse_id
from .tail import Tails

log = logging.getLogger(__name__)

READ_BLOCK_MS = 5000
READ_COUNT = 500
RECONNECT_MIN, RECONNECT_MAX = 0.05, 2.0
T = TypeVar("T")


class LivePath(Positions):
    """Mixed into RedisBackend: the attributes below are set by its constructor."""

    redis: Redis
    _reader: Redis
    _subscriber: Redis
    _deliver: Deliver
    _node: str
    _wake_key: str
    _marker: str
    _epochs_key: str
    _epochs_id: StreamId
    _ephemeral_channel: str
    _positions: dict[str, StreamId]
    _live_epochs: dict[str, int]
    _wake_id: StreamId
    _wake_sent: bool
    _subscribed: asyncio.Event
    _reader_epoch: int | None
    known_epochs: KnownEpochs
    _reading: bool
    tails: Tails
    on_restart: Restart | None

    if TYPE_CHECKING:  # provided by RedisBackend

        def key(self, channel: str) -> str: ...

        async def command(
            self, call: Callable[[], Awaitable[T]], *, idempotent: bool = False
        ) -> T: ...

    async def _confirm_epoch(self, client: Redis) -> int:
        candidate = self.known_epochs.candidate()
        raw = await client.eval(CONFIRM_ONLY, 1, self._marker, candidate)  # type: ignore[misc]
        self.known_epochs.saw(int(raw))
        return int(raw)

    async def _wake_reader(self) -> None:
        """Make the reader's blocked XREAD return so that it picks up a new channel."""
        if self._wake_sent:
            return  # a wake sent since the reader's last snapshot will do: it covers this channel
        self._wake_sent = True

        async def run() -> None:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.xadd(self._wake_key, {"w": "1"}, maxlen=1, approximate=False)
                pipe.pexpire(self._wake_key, 60_000)
                await pipe.execute()

        try:
            await self.command(run)
        except BusUnavailable as exc:
            # Not lost, only late: the reader's next round (at most READ_BLOCK_MS) includes it.
            self._wake_sent = False
            log.warning("could not wake the reader: %s", exc)

    async def _read_loop(self) -> None:
        delay = RECONNECT_MIN
        while True:
            try:
                if self._reader_epoch is None or delay > RECONNECT_MIN:
                    newest = await self._reader.xrevrange(self._epochs_key, "+", "-", count=1)
                    self._epochs_id = parse_id(newest[0][0]) if newest else (0, 0)
                    epoch = await self._confirm_epoch(self._reader)
                    if self._reader_epoch is not None and epoch != self._reader_epoch:
                        await self._rebase(epoch)
                    elif self._reader_epoch is not None:
                        await self._recheck(epoch)  # back from away: did a stream go?
                    self._reader_epoch = epoch
                self._reading = True
                # The snapshot and the reset of `_wake_sent` happen together with no await
                # between: a channel added after this point sends a wake that ends this XREAD.
                self._wake_sent = False
                keys = {self.key(channel): channel for channel in self._positions}
                streams: dict[Any, Any] = {
                    self._wake_key: format_id(self._wake_id),
                    self._epochs_key: format_id(self._epochs_id),
                }
                for key, channel in keys.items():
                    streams[key] = format_id(self._positions[channel])
                reply = await self._reader.xread(streams, count=READ_COUNT, block=READ_BLOCK_MS)
                announced = self._announced_epoch(reply or [])
                if announced is not None and announced != self._reader_epoch:
                    # A new epoch while connected (a FLUSHALL): what this reply holds was read
                    # from positions in the old numbering. Move them first, then read again.
                    self._reading = False
                    await self._rebase(announced)
                    self._reader_epoch = announced
                    continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._reading = False  # what the tails hold may be behind: polls read Redis
                log.warning("redis reader failed (%s); retrying in %.2fs", exc, delay)
                # Pooled command connections are likely stale too (a Redis restart).
                with contextlib.suppress(Exception):
                    await self.redis.connection_pool.disconnect(inuse_connections=False)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX)
                continue
            delay = RECONNECT_MIN
            try:
                self._dispatch(reply or [], keys)
            except Exception:
                log.exception("delivering events failed")

    def _announced_epoch(self, reply: list[Any]) -> int | None:
        """The newest epoch announced on the epochs stream in this reply, if any."""
        for raw_key, entries in reply:
            key = raw_key.decode() if isinstance(raw_key, bytes) else raw_key
            if key == self._epochs_key and entries:
                entry_id, fields = entries[-1]
                self._epochs_id = parse_id(entry_id)
                epoch = int(fields.get(b"e") or fields.get("e"))
                self.known_epochs.saw(epoch)
                return epoch
        return None

    def _dispatch(self, reply: list[Any], keys: dict[str, str]) -> None:
        events: list[Event] = []
        for raw_key, entries in reply:
            key = raw_key.decode() if isinstance(raw_key, bytes) else raw_key
            if key == self._wake_key:
                self._wake_id = max(self._wake_id, parse_id(entries[-1][0]))
                continue
            channel = keys.get(key)
            position = self._positions.get(channel) if channel is not None else None
            if channel is None or position is None:
                continue  # unlistened while the XREAD was in flight
            # Only entries past the current position: a re-listen may have moved it on.
            fresh: list[Entry] = [e for e in entries if parse_id(e[0]) > position]
            if not fresh:
                continue
            self._positions[channel] = parse_id(fresh[-1][0])
            tails = self.tails
            for entry_id, fields in fresh:
                decoded = decode(channel, [(entry_id, fields)])
                if not decoded:
                    tails.drop(channel)  # malformed (skipped): no epoch to go by
                    continue
                epoch = entry_epoch(fields)
                seq = parse_id(entry_id)[1]
                known = self._live_epochs.get(channel)
                self._live_epochs[channel] = epoch
                if known is not None and epoch != known:
                    # A new epoch: what came before goes out first, then the restart, then the rest.
                    if events:
                        self._deliver(events)
                        events = []
                    if self.on_restart is not None:
                        self.on_restart(channel, make_cursor(epoch, seq - 1))
                tails.add(channel, epoch, seq, decoded[0])
                events.extend(decoded)
        if events:
            self._deliver(events)

    async def _ephemeral_loop(self) -> None:
        async def ready() -> None:
            self._subscribed.set()

        await follow(
            self._subscriber,
            self._ephemeral_channel,
            self._on_ephemeral,
            what="redis subscriber",
            backoff=(RECONNECT_MIN, RECONNECT_MAX),
            ready=ready,
            lost=self._subscribed.clear,
        )

    def _on_ephemeral(self, payload: bytes) -> None:
        node, _, body = payload.partition(b" ")
        if node == self._node.encode():
            return
        try:
            event = event_from_json(body)
            if not CHANNEL_RE.fullmatch(event.channel) or not TYPE_RE.fullmatch(event.type):
                raise ValueError("bad channel or type")
            if event.seq is not None:
                raise ValueError("an ephemeral event cannot carry an id")
        except Exception as exc:
            log.warning("skipping malformed ephemeral message: %s", exc)
            return
        self._deliver([event])
