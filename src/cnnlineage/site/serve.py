"""Serve a built site on this machine only (127.0.0.1), with the standard library's HTTP server."""

from __future__ import annotations

import functools
import http.server
from pathlib import Path

__all__ = ["make_server"]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass


def make_server(directory: str | Path, *, port: int = 8000) -> http.server.ThreadingHTTPServer:
    """Return an HTTP server for the site in ``directory``, bound to 127.0.0.1 (``port`` 0 picks a free one).

    Call ``serve_forever()`` on it; ``server_address[1]`` is the port. A directory without
    ``index.html`` is a ValueError.
    """
    d = Path(directory)
    if not (d / "index.html").is_file():
        raise ValueError(f"{d} holds no index.html: build the site first with `cnnlineage site --out {d}`")
    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"--port must be 0 (any free port) to 65535, got {port!r}")
    handler = functools.partial(_QuietHandler, directory=str(d.resolve()))
    try:
        return http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError as e:
        raise ValueError(
            f"cannot listen on 127.0.0.1:{port} ({e.strerror}); choose another --port, or 0 for any free one"
        ) from None
