"""Idempotent publishes remembered in Redis, so a retry reaching another node is caught too.

A publish claims its key (SET NX, a short TTL) with a claim of its own (`~<random>`). The append
script then records, in the same atomic step as the XADD, where the event landed
and what it is (`@<epoch>:<seq>:<ts>` then type, sender and data, separated by 0x1f), and the bus
finally stores the whole event. The script appends only while the key holds that claim (or
nothing): an append held by the network past the claim's TTL, while a retry on another node took
the key and published, is refused rather than publishing twice. So when the reply to the append is
lost (a timeout, a dropped connection) the outcome is not guessed: the claim is not given back
(only a bare claim is), and a retry finds the pointer and answers with the event it records, even
once the stream has trimmed it (the pointer and the entry are written in one atomic script, so
Redis never keeps one without the other). A pointer written before pointers recorded the event
(`@<epoch>:<seq>`) is read from the stream instead; if its event is gone, the retry publishes again.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from ..events import Event
from ..idempotency import PENDING
from .streams import decode, make_cursor

if TYPE_CHECKING:
    from .backend import RedisBackend

CLAIM_TTL_MS = 30_000
"""A claim outlives any publish; a node that dies holding one frees it after this."""
RELEASE = (
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
)
POINTER = b"@"
CLAIM = b"~"
FIELD = b"\x1f"


class RedisIdempotencyStore:
    def __init__(self, backend: RedisBackend, ttl: float) -> None:
        self._backend = backend
        self._ttl_ms = max(1, int(ttl * 1000))
        self._prefix = backend.idempotency_prefix

    async def claim(self, key: str) -> bytes | None:
        redis = self._backend.redis
        name = self._prefix + key
        mine = _new_claim()

        async def claim_or_read() -> bytes | None:
            # SET NX takes the key for this publish; if it was taken, GET says by what.
            async with redis.pipeline(transaction=True) as pipe:
                pipe.set(name, mine, px=CLAIM_TTL_MS, nx=True)
                pipe.get(name)
                taken, value = await pipe.execute()
            return None if taken else (value if value is not None else PENDING)

        self._backend.claims.pop(name, None)
        value = await self._backend.command(claim_or_read, idempotent=True)
        if value is None:
            self._backend.claims[name] = mine
        elif value.startswith(POINTER):
            return await self._resolve(key, value)
        elif value.startswith(CLAIM):
            return PENDING  # another publish's claim
        return value

    async def _resolve(self, key: str, pointer: bytes) -> bytes | None:
        """The event a pointer names, or None (and the key is ours) if it was not kept."""
        channel = key.split("\x1f")[1]
        where, *record = pointer[1:].split(FIELD, 3)
        epoch_text, seq_text, *ts_text = where.decode().split(":")
        epoch, seq = int(epoch_text), int(seq_text)
        if record and ts_text:
            type_, sender, data = record
            event = Event(
                channel,
                type_.decode(),
                data,
                float(ts_text[0]),
                sender.decode(),
                make_cursor(epoch, seq),
            )
            return await self._recover(key, event)
        stream = self._backend.key(channel)
        redis = self._backend.redis
        entries = await self._backend.command(
            lambda: redis.xrange(stream, f"0-{seq}", f"0-{seq}", count=1), idempotent=True
        )
        for event in decode(channel, entries):
            if event.seq == make_cursor(epoch, seq):
                return await self._recover(key, event)
        # Lost with Redis data (or trimmed long ago): take the key over and publish again.
        await self.put(key, PENDING)
        return None

    async def _recover(self, key: str, event: Event) -> bytes:
        """Kept, but its append's reply was lost, and with it the node's archiving of it (done
        on the reply): archived now (a copy is skipped), and remembered whole."""
        self._backend.archiver.add([event])
        await self.put(key, event.json)
        return event.json

    async def put(self, key: str, event_json: bytes) -> None:
        """PENDING: the key is this publish's again (a claim of its own, as `claim` takes)."""
        redis = self._backend.redis
        name = self._prefix + key
        claims = self._backend.claims
        claims.pop(name, None)
        if event_json == PENDING:
            mine = _new_claim()
            await self._backend.command(
                lambda: redis.set(name, mine, px=CLAIM_TTL_MS), idempotent=True
            )
            claims[name] = mine
            return
        await self._backend.command(
            lambda: redis.set(name, event_json, px=self._ttl_ms), idempotent=True
        )

    async def recall(self, key: str) -> bytes | None:
        return None  # the append's pointer, read by `claim`, is what tells here

    async def release(self, key: str) -> None:
        redis = self._backend.redis
        name = self._prefix + key
        mine = self._backend.claims.pop(name, None)
        if mine is None:
            return  # no claim of ours to give back
        # Only our own claim is given back: never another's, a stored event, nor the pointer an
        # append left (the publish may have landed even though its reply was lost).
        await self._backend.command(lambda: redis.eval(RELEASE, 1, name, mine), idempotent=True)


def _new_claim() -> bytes:
    """A claim no other publish holds: what the append script checks the key still has."""
    return CLAIM + secrets.token_hex(8).encode()
