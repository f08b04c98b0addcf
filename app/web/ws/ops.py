"""The client ops of `/ws` (docs/protocol.md), one function each, and the table that names them.

Each op takes the connection, the decoded message and its `ref`, replies through the connection's
outbox, and raises a `FourcastError` for the client's mistakes (the connection turns it into an
`error` op).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ...bus.events import EventError, parse_cursor, parse_poll_cursor, validate_channel
from ...errors import Forbidden, FourcastError, InvalidInput, Unauthorized
from ...identity.budgets import read_from_start_spender, spend_subscribe
from ...identity.policy import check_read
from .expiry import arm_expiry

if TYPE_CHECKING:
    from ...identity.principal import Principal
    from .connection import Connection

Op = Callable[["Connection", dict[str, Any], Any], Awaitable[None]]


async def auth(conn: Connection, msg: dict[str, Any], ref: Any) -> None:
    token = msg.get("token")
    if not isinstance(token, str) or not token:
        raise Unauthorized("auth needs a token")
    principal = await conn.services.tokens.authenticate(token)
    if not conn.principal.is_anonymous and principal.sender != conn.principal.sender:
        raise Forbidden("a connection cannot change identity", code="identity_change")
    _check_subscriptions(conn, principal)
    if principal.is_user and conn.counted_user is None:
        # Signing in on an open connection counts it against the person's cap, as a
        # handshake with credentials would have.
        conn.services.connections.add_user(principal.id)
        conn.counted_user = principal.id
    conn.principal = principal
    arm_expiry(conn)  # a refreshed token moves the deadline
    conn.reply({"op": "ack", "ref": ref, "user": principal.public()})


async def refresh(conn: Connection, msg: dict[str, Any], ref: Any) -> None:
    """A new token for the same person before the current one expires: no reconnect. A bad token
    is an error op; the connection keeps its current credential until that expires (4401)."""
    token = msg.get("token")
    if not isinstance(token, str) or not token:
        raise InvalidInput("refresh needs a token", code="invalid_token")
    if not conn.principal.is_user:
        raise Forbidden("only a signed-in person's connection is refreshed", code="not_refreshable")
    try:
        principal = await conn.services.tokens.authenticate(token)
    except Unauthorized as exc:
        raise InvalidInput(exc.message, code=exc.code) from None
    if principal.sender != conn.principal.sender:
        raise Forbidden("a connection cannot change identity", code="identity_change")
    _check_subscriptions(conn, principal)
    conn.principal = principal
    arm_expiry(conn)
    conn.reply({"op": "ack", "ref": ref, "expires_at": principal.expires_at})


def _check_subscriptions(conn: Connection, principal: Principal) -> None:
    """A new token must still grant every channel the connection follows: capabilities it no
    longer carries are not kept by refreshing (the client unsubscribes first)."""
    for channel in conn.subscriptions:
        try:
            check_read(principal, channel)
        except FourcastError:
            raise Forbidden(f"the new token does not grant {channel}: unsubscribe first") from None


async def subscribe(conn: Connection, msg: dict[str, Any], ref: Any) -> None:
    channel = _channel(msg)
    check_read(conn.principal, channel)
    after_raw = msg.get("after")
    try:
        after = None if after_raw is None else _parse_after(after_raw)
    except EventError as exc:
        raise InvalidInput(exc.message, code=exc.code) from None
    services = conn.services
    most = services.settings.max_channels_per_socket  # ops run one at a time: checked once
    if channel not in conn.subscriptions and len(conn.subscriptions) >= most:
        raise InvalidInput(f"at most {most} channels per connection", code="too_many")
    # Its budgets once its own checks have passed: a refused subscribe costs none.
    spend_subscribe(services.budgets, _subscribe_key(conn), conn.principal, conn.ip, after)
    # Subscribing again replaces the subscription, keeping the presence lease (a client resuming
    # on the same connection has not left the room). The old one holds what arrives meanwhile
    # (the new one holds the same), and stays if the new one is refused before any of it began.
    old = conn.subscriptions.get(channel)
    if old is not None:
        old.hold()
    began = False

    def begin() -> None:
        nonlocal began
        began = True

    try:
        subscription, start = await services.bus.subscribe(
            channel,
            conn.sink,
            after,
            read_from_start_spender(services.budgets, conn.principal, conn.ip),
            begin,
        )
    except BaseException:
        if old is not None and (began or not old.resume()):
            await conn.unsubscribe(channel)  # history began to arrive, or the held part is lost
        raise
    conn.subscriptions[channel] = subscription
    conn.reply({"op": "ack", "ref": ref, "channel": channel, "next": str(start)})
    if old is not None:
        await services.bus.unsubscribe(old)
    if channel not in conn.leases and conn.principal.is_user:
        conn.leases[channel] = await services.presence.connect(
            channel, conn.principal, "websocket", ip=conn.ip
        )


async def unsubscribe(conn: Connection, msg: dict[str, Any], ref: Any) -> None:
    channel = _channel(msg)
    await conn.unsubscribe(channel)
    conn.reply({"op": "ack", "ref": ref, "channel": channel})


async def publish(conn: Connection, msg: dict[str, Any], ref: Any) -> None:
    for name in ("channel", "type", "data"):
        if name not in msg:
            raise InvalidInput(f"missing field: {name}", code="missing_field")
    ephemeral = msg.get("ephemeral", False)
    if not isinstance(ephemeral, bool):
        raise InvalidInput("ephemeral must be true or false")
    conn.services.tokens.check_standing(conn.principal)  # signed out or expired since: 401
    result = await conn.services.publisher.publish(
        conn.principal, msg["channel"], msg["type"], msg["data"], ephemeral=ephemeral, ip=conn.ip
    )
    if result.event is None:
        conn.reply({"op": "ack", "ref": ref, "id": None, "suppressed": True})
    else:
        conn.reply({"op": "ack", "ref": ref, "id": result.event.cursor, "ts": result.event.ts})


async def ping(conn: Connection, msg: dict[str, Any], ref: Any) -> None:
    ts = msg.get("ts")
    if isinstance(ts, dict | list | bool):
        raise InvalidInput("ts must be a number or a string")  # echoed: it must encode
    reply: dict[str, Any] = {"op": "pong", "ts": ts, "server_ts": time.time() * 1000}
    if ref is not None:
        reply["ref"] = ref
    conn.reply(reply)


def _subscribe_key(conn: Connection) -> str | None:
    """Whose subscribe budget a subscribe spends: the person's (an anonymous connection's own:
    a thousand readers behind one address are no abuse), none for a service. A loop of
    subscribe/unsubscribe is refused long before its catch-up reads add up."""
    principal = conn.principal
    if principal.is_service:
        return None
    return principal.id if principal.is_user else "conn:" + conn.client_id


def _channel(msg: dict[str, Any]) -> str:
    try:
        return validate_channel(msg.get("channel"))
    except EventError as exc:
        raise InvalidInput(exc.message, code=exc.code) from None


def _parse_after(cursor: object) -> int:
    """An event id, or a poll's `next` cursor (a client may switch transports mid-stream)."""
    if isinstance(cursor, str):
        return parse_poll_cursor(cursor)[0]
    return parse_cursor(cursor)


OPS: dict[str, Op] = {
    "auth": auth,
    "refresh": refresh,
    "subscribe": subscribe,
    "unsubscribe": unsubscribe,
    "publish": publish,
    "ping": ping,
}
"""Every op the server handles: the dispatch table, and the list docs and tests check against."""
