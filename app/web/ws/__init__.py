"""The `/ws` connection: its state and read loop, its ops and their dispatch, the end of its
credential, and its writer (one module each)."""
