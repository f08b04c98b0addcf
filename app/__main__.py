"""`python -m app` (`python -m fourcast` when installed): the same as `fourcast serve`."""

from .cli import serve_main

if __name__ == "__main__":
    serve_main()
