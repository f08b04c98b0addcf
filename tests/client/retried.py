"""What the tests of a WebSocket closed "later" (1008 for abuse, 1013) share: a signed-in
`auto` subscription followed until it is live again and has received an event published then."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from app.client import Client, Event, Status
from tests.client.test_refusals import WAIT, Sleeps


@dataclass
class Followed:
    statuses: list[Status] = field(default_factory=list)
    sleeps: Sleeps = field(default_factory=Sleeps)
    published: Event | None = None
    received: Event | None = None

    def retries(self) -> list[Status]:
        return [s for s in self.statuses if s.state == "retrying"]


async def follow_until_live(url: str, name: str, channel: str, text: str) -> Followed:
    """Signs in as `name`, subscribes to `channel` with `auto`, waits until live (or raises what
    ended the subscription), then publishes a `chat.message` of `text` and receives it."""
    followed = Followed()
    live = asyncio.Event()

    def status(change: Status) -> None:
        followed.statuses.append(change)
        if change.state == "live":
            live.set()

    async with Client(url, sleep=followed.sleeps) as client:
        await client.sign_in(name)
        subscription = client.subscribe(channel, transport="auto", on_status=status)
        pending = asyncio.ensure_future(anext(aiter(subscription)))
        waiting = asyncio.ensure_future(live.wait())
        await asyncio.wait({pending, waiting}, timeout=WAIT, return_when="FIRST_COMPLETED")
        waiting.cancel()
        if pending.done():
            pending.result()  # raises what ended the subscription
        assert live.is_set(), followed.statuses
        followed.published = await client.publish(channel, "chat.message", {"text": text})
        event = await asyncio.wait_for(pending, WAIT)
        while event.type != "chat.message":  # the room's presence comes first
            event = await asyncio.wait_for(anext(subscription), WAIT)
        followed.received = event
        await subscription.aclose()
    return followed
