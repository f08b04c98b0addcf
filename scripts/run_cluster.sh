#!/usr/bin/env bash
# A local fourcast cluster: one redis-server and two nodes sharing it. Ctrl-C stops everything.
#
#   scripts/run_cluster.sh            (or: make run-cluster)
#
# Environment (all optional):
#   REDIS_PORT=6390  NODE_PORTS="8001 8002"  HOST=127.0.0.1  CLUSTER_DIR=var/cluster
#   FOURCAST_DATABASE_URL   passed to both nodes. Unset, each node keeps its own SQLite file under
#                           $CLUSTER_DIR/nodeN/: the event log is shared (it lives in Redis), but
#                           people, rooms and notifications are not. For a real cluster point both
#                           at one PostgreSQL: postgresql+asyncpg://user@host/db
#   FOURCAST_SECRET_KEY     shared by both nodes (a token from one works on the other); generated
#                           once and kept in $CLUSTER_DIR/secret_key when unset.
#   Any other FOURCAST_* variable is passed through to both nodes.
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
HOST=${HOST:-127.0.0.1}
REDIS_PORT=${REDIS_PORT:-6390}
NODE_PORTS=${NODE_PORTS:-"8001 8002"}
CLUSTER_DIR=${CLUSTER_DIR:-var/cluster}
REDIS_SERVER=$(command -v redis-server || echo /usr/bin/redis-server)
REDIS_CLI=$(command -v redis-cli || echo /usr/bin/redis-cli)

if [ ! -x "$PYTHON" ]; then
    echo "run-cluster: $PYTHON not found (make install)" >&2
    exit 1
fi
if [ ! -x "$REDIS_SERVER" ]; then
    echo "run-cluster: redis-server not installed (make system-deps)" >&2
    exit 1
fi

mkdir -p "$CLUSTER_DIR/redis"
if [ -z "${FOURCAST_SECRET_KEY:-}" ]; then
    if [ ! -s "$CLUSTER_DIR/secret_key" ]; then
        (umask 077 && "$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(48))' \
            >"$CLUSTER_DIR/secret_key")
    fi
    FOURCAST_SECRET_KEY=$(cat "$CLUSTER_DIR/secret_key")
fi
export FOURCAST_SECRET_KEY

pids=()
stop() {
    trap - INT TERM EXIT
    echo
    echo "run-cluster: stopping"
    # Nodes first (SIGTERM: they drain), then Redis (SIGTERM flushes the append-only file).
    for pid in "${pids[@]:1}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]:1}"; do wait "$pid" 2>/dev/null || true; done
    if [ "${#pids[@]}" -gt 0 ]; then
        kill -TERM "${pids[0]}" 2>/dev/null || true
        wait "${pids[0]}" 2>/dev/null || true
    fi
}
trap "stop; exit 130" INT TERM
trap stop EXIT

if "$REDIS_CLI" -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1; then
    echo "run-cluster: port $REDIS_PORT already answers PING; set REDIS_PORT to a free port" >&2
    exit 1
fi
# In its own session: Ctrl-C reaches the nodes, and Redis stops after them (below).
setsid "$REDIS_SERVER" --bind 127.0.0.1 --port "$REDIS_PORT" --protected-mode yes \
    --dir "$PWD/$CLUSTER_DIR/redis" --appendonly yes --appendfsync everysec --save "" \
    --logfile "$PWD/$CLUSTER_DIR/redis/redis.log" &
pids+=($!)
for _ in $(seq 100); do
    "$REDIS_CLI" -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
    kill -0 "${pids[0]}" 2>/dev/null || { echo "run-cluster: redis-server failed; see $CLUSTER_DIR/redis/redis.log" >&2; exit 1; }
    sleep 0.1
done
export FOURCAST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"

n=0
urls=()
for port in $NODE_PORTS; do
    n=$((n + 1))
    mkdir -p "$CLUSTER_DIR/node$n"
    # Output prefixed with the node's name; $! is the node itself, not the prefixer.
    FOURCAST_DATA_DIR="$CLUSTER_DIR/node$n" "$PYTHON" -m app --host "$HOST" --port "$port" \
        > >(sed -u "s/^/[node$n] /") 2>&1 &
    pids+=($!)
    urls+=("http://$HOST:$port/")
    # The first node applies migrations before the next one starts on a shared database.
    "$PYTHON" scripts/wait_ready.py "http://$HOST:$port/healthz" "$!" || exit 1
done

echo
echo "fourcast cluster: redis $FOURCAST_REDIS_URL (data in $CLUSTER_DIR/redis)"
for i in "${!urls[@]}"; do echo "  node$((i + 1)): ${urls[$i]}"; done
if [ -z "${FOURCAST_DATABASE_URL:-}" ]; then
    echo "  database: SQLite per node (people and rooms differ between nodes;"
    echo "            set FOURCAST_DATABASE_URL=postgresql+asyncpg://... to share one)"
else
    echo "  database: shared, ${FOURCAST_DATABASE_URL%%://*} at ${FOURCAST_DATABASE_URL##*@}"
fi
echo "Ctrl-C stops the nodes and Redis."
wait -n "${pids[@]}" || true
echo "run-cluster: a process exited" >&2
