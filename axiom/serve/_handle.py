"""``ServerHandle``: a server running in a background thread, with ``.url``, ``.port`` and ``.stop()``.

Every adapter (``serve_rest``, ``serve_grpc``, ``serve_graphql``) returns one when called with
``background=True``.

Example:
    >>> import threading
    >>> stopped = threading.Event()
    >>> with ServerHandle("http://127.0.0.1:1", 1, stopped.set) as handle:
    ...     handle.port
    1
    >>> stopped.is_set()
    True
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

__all__ = ["ServerHandle"]


class ServerHandle:
    """A running server: ``url`` (e.g. ``http://127.0.0.1:8080``), ``port``, ``stop()``; a context manager.

    ``stop()`` is idempotent and thread-safe: the first call runs the adapter's shutdown function.

    Example:
        >>> calls = []
        >>> handle = ServerHandle("127.0.0.1:5", 5, lambda: calls.append(1))
        >>> handle.stop(); handle.stop(); calls, handle.stopped
        ([1], True)
    """

    def __init__(self, url: str, port: int, stop: Callable[[], Any], *, thread: threading.Thread | None = None) -> None:
        self.url = url
        self.port = int(port)
        self._stop = stop
        self._thread = thread
        self._lock = threading.Lock()
        self.stopped = False

    def stop(self) -> None:
        """Shut the server down (idempotent) and wait for its thread to end."""
        with self._lock:
            if self.stopped:
                return
            self.stopped = True
        self._stop()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "stopped" if self.stopped else "running"
        return f"ServerHandle({self.url!r}, {state})"
