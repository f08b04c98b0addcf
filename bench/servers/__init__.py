"""Start the server a scenario measures (fourcast, or a peer: Nchan, the floor app), each in its own
process on a free port with a temp dir, pinned to core 0; and the redis-server of the Redis backend.

`process.Process` is what they share; `make.make_server` picks one for a scenario spec; `launch`
holds the helpers for starting any process. The names the runner and `bench ab` use are here."""

from bench.servers.fourcast import Server
from bench.servers.launch import export_head, free_port, nice_command, pin_command, raise_nofile
from bench.servers.make import make_server
from bench.servers.process import Process

__all__ = [
    "Process",
    "Server",
    "export_head",
    "free_port",
    "make_server",
    "nice_command",
    "pin_command",
    "raise_nofile",
]
