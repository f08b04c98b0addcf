"""Writing to the Redis backend: appending a batch with one script, publishing live-only events.

An append whose reply is lost is handed to recovery.py; what an append kept goes to the SQL
archive (archive.py), at once or, with `ack_after_journal`, before it is acknowledged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from ..archive import Archiver
from ..backend import BusUnavailable, Deliver, Draft, PartlyAppended
from ..events import Event, now_ms
from .epoch import KnownEpochs
from .recovery import LostAppend, Recovery, never_sent
from .streams import make_cursor, parse_id
from .tail import Tails

T = TypeVar("T")


class Writes:
    """Mixed into RedisBackend: the attributes below are set by its constructor."""

    redis: Redis
    archiver: Archiver
    recovery: Recovery
    known_epochs: KnownEpochs
    tails: Tails
    claims: dict[str, bytes]
    idempotency_prefix: str
    epoch: int
    _append: AsyncScript
    _history: int
    _batches: int
    _fence_prefix: str
    _marker: str
    _top_key: str
    _idempotency_ttl_ms: int
    _stream_idle_ms: int
    _ack_after_journal: bool
    _node: str
    _ephemeral_channel: str
    _deliver: Deliver

    if TYPE_CHECKING:  # provided by RedisBackend

        def key(self, channel: str) -> str: ...

        async def command(
            self, call: Callable[[], Awaitable[T]], *, idempotent: bool = False
        ) -> T: ...

    async def append(self, drafts: Sequence[Draft]) -> list[Event]:
        self.archiver.check_room()  # the archive never drops: publishers wait instead
        ts = now_ms()
        stamp = repr(ts)
        self._batches += 1
        fence = f"{self._fence_prefix}{self._batches}"
        keys = [self._marker, fence, self._top_key, *(self.key(d.channel) for d in drafts)]
        candidate = self.known_epochs.candidate()
        ttl, idle = self._idempotency_ttl_ms, self._stream_idle_ms
        args: list[Any] = [candidate, self._history, stamp, ttl, idle]
        claims = self.claims
        for d in drafts:
            idem = d.idempotency_key
            name = self.idempotency_prefix + idem if idem else ""
            args += [d.type, d.sender, d.data, name, claims.get(name, b"")]
        # One script, one round trip, atomic: the epoch check, every XADD (and its stream's
        # expiry), and where each idempotent publish landed. Readers see the whole batch at once.
        sent = False

        def run() -> Any:
            nonlocal sent
            sent = True
            return self._append(keys=keys, args=args)

        try:
            reply = await self.command(run)
        except BusUnavailable as exc:
            if sent and not never_sent(exc):  # it may have run: archive what it kept, if any
                self.recovery.add(LostAppend(fence, stamp, drafts))
            raise
        epoch = int(reply[0])
        self.epoch = epoch
        self.known_epochs.saw(epoch)
        events: list[Event | None] = []
        tails = self.tails
        for d, raw in zip(drafts, reply[1:], strict=True):
            if raw is None:
                events.append(None)  # superseded: not appended (see epoch.APPEND)
                continue
            seq = parse_id(raw)[1]
            tails.appended(d.channel, epoch, seq)
            events.append(Event(d.channel, d.type, d.data, ts, d.sender, make_cursor(epoch, seq)))
        kept = [event for event in events if event is not None]
        if self._ack_after_journal:
            await self.archiver.write_now(kept)  # acknowledged only once in the SQL journal
        else:
            self.archiver.add(kept)
        if len(kept) < len(events):
            raise PartlyAppended(events)
        return kept

    async def publish_ephemeral(self, event: Event) -> None:
        # Published first, so an error means no node delivered it; our own copy comes back
        # tagged with our node id and is dropped by the subscriber.
        payload = self._node.encode() + b" " + event.json
        await self.command(lambda: self.redis.publish(self._ephemeral_channel, payload))
        self._deliver([event])


__all__ = ["Writes"]
