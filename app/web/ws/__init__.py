"""The `/ws` connection: its state and read loop, its ops, and its writer (one module each)."""
