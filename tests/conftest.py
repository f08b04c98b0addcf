"""Shared fixtures: real servers (uvicorn, redis-server, PostgreSQL) started by the suite itself."""

pytest_plugins = [
    "tests.fixtures.server",
    "tests.fixtures.redis",
    "tests.fixtures.postgres",
]
