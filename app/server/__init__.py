"""How fourcast is served: uvicorn configuration and protocol extensions (`python -m app`)."""
