"""fourcast's asyncio client: `from fourcast.client import Client` (`app.client` in a checkout).

    async with Client("http://127.0.0.1:8000", api_key=KEY) as client:
        await client.publish("public:news", "headline", {"text": "hello"})
        async for event in client.subscribe("public:news", after=cursor):
            print(event.id, event.type, event.data)

It needs only httpx and websockets: nothing of the server is imported. See docs/client.md.
"""

from .backoff import Backoff
from .client import DEFAULT_URL, Client
from .errors import (
    AuthError,
    ForbiddenError,
    FourcastError,
    TransportDisabled,
    UnavailableError,
)
from .events import Event, Reset, Status
from .subscription import Subscription
from .transports import TRANSPORTS

__all__ = [
    "DEFAULT_URL",
    "TRANSPORTS",
    "AuthError",
    "Backoff",
    "Client",
    "Event",
    "ForbiddenError",
    "FourcastError",
    "Reset",
    "Status",
    "Subscription",
    "TransportDisabled",
    "UnavailableError",
]
