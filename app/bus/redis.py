"""The Redis backend: a Redis Stream per channel orders, numbers and keeps its events.

Keys (prefix `fourcast`):
- `fourcast:ch:<channel>`: the channel's stream, trimmed with `MAXLEN ~ history_size`. Entries are
  added with the explicit id `0-*`, which Redis (>= 7.0) numbers 0-1, 0-2, ...: the sequence part
  is the cursor, a plain integer increasing per channel, shared by every node and kept across
  restarts by the append-only file. Fields: `t` type, `f` from, `ts` acceptance time, `d` data.
- `fourcast:ephemeral`: the one pub/sub channel carrying live-only events between nodes.
- `fourcast:node:<id>:wake`: a per-node stream whose only use is to interrupt the reader's XREAD.
- `fourcast:idem:<key>`: remembered idempotent publishes, with a TTL.

The live path is one task per node: XREAD BLOCK over the streams of the channels this node listens
to, from the last id it delivered, handed to the hub through `deliver`. A second task receives
ephemeral events. So a node holds a bounded command pool, one reader and one pub/sub connection,
never a connection per client. Commands fail fast with `BusUnavailable` while Redis is down or hung.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

import orjson
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from .archive import Archiver
from .backend import BusUnavailable, Deliver, Draft, Journal, ReadResult, event_from_json
from .events import CHANNEL_RE, TYPE_RE, Event, now_ms
from .idempotency import PENDING

log = logging.getLogger(__name__)

T = TypeVar("T")
StreamId = tuple[int, int]
Entry = tuple[bytes, dict[bytes, bytes]]

COMMAND_TIMEOUT = 1.5
"""Seconds before a command to a hung Redis fails; also the wait for a free pooled connection."""
READ_BLOCK_MS = 5000
READ_COUNT = 500
RECONNECT_MIN, RECONNECT_MAX = 0.05, 2.0
ERRORS = (RedisError, OSError)


def _parse_id(raw: bytes | str) -> StreamId:
    text = raw.decode() if isinstance(raw, bytes) else raw
    ms, _, seq = text.partition("-")
    return int(ms), int(seq)


def _format_id(stream_id: StreamId) -> str:
    return f"{stream_id[0]}-{stream_id[1]}"


class RedisBackend:
    def __init__(
        self,
        url: str,
        journal: Journal,
        history_size: int,
        *,
        prefix: str = "fourcast",
        pool_size: int = 64,
        archive_max: int = 100_000,
    ) -> None:
        self._history = history_size
        self._journal = journal
        self._prefix = prefix
        self._node = uuid.uuid4().hex
        self._deliver: Deliver = lambda events: None
        no_retry = Retry(NoBackoff(), 0)  # fail fast: the caller (or the client) decides to retry
        self.redis = Redis(
            connection_pool=BlockingConnectionPool.from_url(
                url,
                max_connections=pool_size,
                timeout=COMMAND_TIMEOUT,
                socket_timeout=COMMAND_TIMEOUT,
                socket_connect_timeout=COMMAND_TIMEOUT,
                retry=no_retry,
            )
        )
        # The reader blocks in XREAD for READ_BLOCK_MS; a longer socket timeout detects a hung server.
        self._reader = Redis.from_url(
            url,
            socket_timeout=READ_BLOCK_MS / 1000 + 3,
            socket_connect_timeout=COMMAND_TIMEOUT,
            retry=no_retry,
        )
        self._subscriber = Redis.from_url(
            url, socket_timeout=10, socket_connect_timeout=COMMAND_TIMEOUT, retry=no_retry
        )
        self._ephemeral_channel = f"{prefix}:ephemeral"
        self._wake_key = f"{prefix}:node:{self._node}:wake"
        # channel -> id of the last entry handed to the hub (or the head when listening began).
        self._positions: dict[str, StreamId] = {}
        self._wake_id: StreamId = (0, 0)
        self._wake_sent = False
        self._subscribed = asyncio.Event()
        self.archiver = Archiver(journal, archive_max)
        self._tasks: list[asyncio.Task[None]] = []

    def key(self, channel: str) -> str:
        return f"{self._prefix}:ch:{channel}"

    # Lifecycle

    async def start(self, deliver: Deliver) -> None:
        self._deliver = deliver
        for name, loop in (
            ("redis-reader", self._read_loop),
            ("redis-ephemeral", self._ephemeral_loop),
        ):
            self._tasks.append(asyncio.create_task(loop(), name=name))
        self._tasks.append(self.archiver.start())
        for task in self._tasks:
            task.add_done_callback(self._task_ended)
        # Best effort: a node that starts while Redis is down keeps retrying in the background.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), COMMAND_TIMEOUT)

    async def stop(self) -> None:
        for task in self._tasks[:2]:  # the reader and the ephemeral subscriber
            task.cancel()
        await self.archiver.stop()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        self._deliver = lambda events: None
        for client in (self._reader, self._subscriber, self.redis):
            with contextlib.suppress(*ERRORS):
                await client.aclose()

    @staticmethod
    def _task_ended(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("%s ended", task.get_name(), exc_info=task.exception())

    async def check(self) -> None:
        await self.command(self.redis.ping, idempotent=True)

    async def command(self, call: Callable[[], Awaitable[T]], *, idempotent: bool = False) -> T:
        """Run a command, mapping Redis failures to BusUnavailable.

        An idempotent command gets one immediate retry on a connection error: a pooled connection
        can be stale after Redis restarted. Appends get none, so a lost reply never doubles an event.
        """
        try:
            return await call()
        except RedisConnectionError as exc:
            if not idempotent:
                raise BusUnavailable(f"redis: {exc}") from exc
        except ERRORS as exc:
            raise BusUnavailable(f"redis: {exc}") from exc
        try:
            return await call()
        except ERRORS as exc:
            raise BusUnavailable(f"redis: {exc}") from exc

    # Writing

    async def append(self, drafts: Sequence[Draft]) -> list[Event]:
        ts = now_ms()
        stamp = repr(ts)

        async def run() -> list[Any]:
            # One transaction, one round trip: readers see the whole batch at once.
            async with self.redis.pipeline(transaction=True) as pipe:
                for d in drafts:
                    fields = {"t": d.type, "f": d.sender, "ts": stamp, "d": d.data}
                    pipe.xadd(
                        self.key(d.channel),
                        fields,  # type: ignore[arg-type]
                        id="0-*",
                        maxlen=self._history,
                        approximate=True,
                    )
                return await pipe.execute()  # type: ignore[no-any-return]

        ids = await self.command(run)
        events = [
            Event(d.channel, d.type, d.data, ts, d.sender, _parse_id(raw)[1])
            for d, raw in zip(drafts, ids, strict=True)
        ]
        self.archiver.add(events)
        return events

    async def publish_ephemeral(self, event: Event) -> None:
        # Published first, so an error means no node delivered it; our own copy comes back
        # tagged with our node id and is dropped by the subscriber.
        payload = self._node.encode() + b" " + event.json
        await self.command(lambda: self.redis.publish(self._ephemeral_channel, payload))
        self._deliver([event])

    # Reading

    async def read(self, channel: str, after: int | None, limit: int) -> ReadResult:
        key = self.key(channel)
        if after is None:
            count = max(1, min(limit, self._history))
            latest = await self.command(
                lambda: self.redis.xrevrange(key, "+", "-", count=count), idempotent=True
            )
            head = _parse_id(latest[0][0])[1] if latest else 0
            if not limit:
                return ReadResult([], head)
            floor = head - self._history
            events = [e for e in self._decode(channel, reversed(latest)) if e.seq > floor]  # type: ignore[operator]
            return ReadResult(events, head)

        async def snapshot() -> list[Any]:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.xrevrange(key, "+", "-", count=1)
                pipe.xrange(key, "-", "+", count=1)
                pipe.xrange(key, f"(0-{after}", "+", count=max(1, limit))
                return await pipe.execute()  # type: ignore[no-any-return]

        newest, oldest, page = await self.command(snapshot, idempotent=True)
        head = _parse_id(newest[0][0])[1] if newest else 0
        first = _parse_id(oldest[0][0])[1] if oldest else head + 1
        # The newest cursor no longer retained: MAXLEN ~ may keep more than history_size entries,
        # but only the last history_size count, exactly as in the memory backend.
        floor = max(head - self._history, first - 1)
        if after > head or after < floor:
            events, last = await self._range(channel, key, floor, limit, None)
            return ReadResult(events, events[-1].seq if events else head, reset=True)  # type: ignore[arg-type]
        events, last = await self._range(channel, key, after, limit, page)
        return ReadResult(events, last)

    async def _range(
        self, channel: str, key: str, after: int, limit: int, page: list[Entry] | None
    ) -> tuple[list[Event], int]:
        """Up to `limit` events after `after`, reading past malformed entries; and the last id read."""
        events: list[Event] = []
        cursor = after
        while len(events) < limit:
            wanted = limit - len(events)
            if page is None:
                start = f"(0-{cursor}"
                page = await self.command(
                    lambda start=start, wanted=wanted: self.redis.xrange(  # type: ignore[misc]
                        key, start, "+", count=wanted
                    ),
                    idempotent=True,
                )
            page = page[:wanted]
            for i, (entry_id, _) in enumerate(page):
                ms, seq = _parse_id(entry_id)
                if ms != 0:
                    # Added by hand with a time-based id: nothing this backend wrote can follow
                    # it (XADD 0-* now fails), and its seq would send the cursor backwards.
                    log.error("stream %s has a foreign id %r; reading stops there", key, entry_id)
                    events.extend(self._decode(channel, page[:i]))
                    return events, cursor
                cursor = seq
            events.extend(self._decode(channel, page))
            if len(page) < wanted:
                break
            page = None
        return events, cursor

    def _decode(self, channel: str, entries: Iterable[Entry]) -> list[Event]:
        events = []
        for entry_id, fields in entries:
            try:
                ms, seq = _parse_id(entry_id)
                if ms != 0:
                    raise ValueError("not an id this backend assigns")
                event_type = fields[b"t"].decode()
                if not TYPE_RE.fullmatch(event_type):
                    raise ValueError(f"bad type {event_type!r}")
                data = fields[b"d"]
                orjson.loads(data)  # spliced into every frame: it must be valid JSON
                events.append(
                    Event(
                        channel, event_type, data, float(fields[b"ts"]), fields[b"f"].decode(), seq
                    )
                )
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                log.warning("skipping malformed entry %r in %s: %s", entry_id, channel, exc)
        return events

    # The live path

    async def listen(self, channel: str) -> None:
        if channel in self._positions:
            return
        key = self.key(channel)
        head = await self.command(
            lambda: self.redis.xrevrange(key, "+", "-", count=1), idempotent=True
        )
        # Start at the head as of now: the caller reads history after this returns, and the hub
        # drops the overlap by cursor, so nothing between the two is lost.
        self._positions.setdefault(channel, _parse_id(head[0][0]) if head else (0, 0))
        await self._wake_reader()

    async def unlisten(self, channel: str) -> None:
        # Lazily: the reader leaves the stream out of its next XREAD; no need to interrupt it.
        self._positions.pop(channel, None)

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
            # The snapshot and the reset of `_wake_sent` happen together with no await between:
            # a channel added after this point sends a wake that makes this XREAD return.
            self._wake_sent = False
            keys = {self.key(channel): channel for channel in self._positions}
            streams: dict[Any, Any] = {self._wake_key: _format_id(self._wake_id)}
            for key, channel in keys.items():
                streams[key] = _format_id(self._positions[channel])
            try:
                reply = await self._reader.xread(streams, count=READ_COUNT, block=READ_BLOCK_MS)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
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

    def _dispatch(self, reply: list[Any], keys: dict[str, str]) -> None:
        events: list[Event] = []
        for raw_key, entries in reply:
            key = raw_key.decode() if isinstance(raw_key, bytes) else raw_key
            if key == self._wake_key:
                self._wake_id = max(self._wake_id, _parse_id(entries[-1][0]))
                continue
            channel = keys.get(key)
            position = self._positions.get(channel) if channel is not None else None
            if channel is None or position is None:
                continue  # unlistened while the XREAD was in flight
            # Only entries past the current position: a re-listen may have moved it on.
            fresh = [e for e in entries if _parse_id(e[0]) > position]
            if fresh:
                self._positions[channel] = _parse_id(fresh[-1][0])
                events.extend(self._decode(channel, fresh))
        if events:
            self._deliver(events)

    async def _ephemeral_loop(self) -> None:
        delay = RECONNECT_MIN
        while True:
            pubsub = self._subscriber.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._ephemeral_channel)
                self._subscribed.set()
                delay = RECONNECT_MIN
                while True:
                    message = await pubsub.get_message(timeout=5)
                    if message is not None:
                        self._on_ephemeral(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("redis subscriber failed (%s); retrying in %.2fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX)
            finally:
                self._subscribed.clear()
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

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


class RedisIdempotencyStore:
    """Idempotent publishes remembered in Redis, so a retry reaching another node is caught too."""

    def __init__(self, backend: RedisBackend, ttl: float) -> None:
        self._backend = backend
        self._ttl_ms = max(1, int(ttl * 1000))
        self._prefix = f"{backend._prefix}:idem:"

    async def claim(self, key: str) -> bytes | None:
        redis = self._backend.redis
        name = self._prefix + key

        async def claim_or_read() -> bytes | None:
            # SET NX takes the key for this publish; if it was taken, GET says by what.
            async with redis.pipeline(transaction=True) as pipe:
                pipe.set(name, PENDING, px=CLAIM_TTL_MS, nx=True)
                pipe.get(name)
                taken, value = await pipe.execute()
            return None if taken else (value if value is not None else PENDING)

        return await self._backend.command(claim_or_read, idempotent=True)

    async def put(self, key: str, event_json: bytes) -> None:
        redis = self._backend.redis
        await self._backend.command(
            lambda: redis.set(self._prefix + key, event_json, px=self._ttl_ms), idempotent=True
        )

    async def release(self, key: str) -> None:
        redis = self._backend.redis
        name = self._prefix + key
        # Only a claim is given back, never a stored event.
        await self._backend.command(lambda: redis.eval(RELEASE, 1, name, PENDING), idempotent=True)


CLAIM_TTL_MS = 30_000
"""A claim outlives any publish; a node that dies holding one frees it after this."""
RELEASE = (
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
)
