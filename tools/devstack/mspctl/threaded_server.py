"""An ASGI app served by uvicorn in a daemon thread, for tests that need a real HTTP server in-process."""

from __future__ import annotations

import threading
import time
from typing import Any, Literal

import uvicorn


class ThreadedServer:
    """uvicorn on 127.0.0.1:`port` in a daemon thread; `start` returns once it accepts connections."""

    def __init__(self, app: Any, port: int, *, lifespan: Literal["auto", "on", "off"] = "on") -> None:
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", lifespan=lifespan, timeout_graceful_shutdown=1
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{port}"

    def start(self, timeout_s: float = 20.0) -> ThreadedServer:
        """Start serving; raise if uvicorn is not up within `timeout_s`."""
        self.thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"uvicorn did not start on {self.url}")
            time.sleep(0.02)
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Ask uvicorn to exit and wait for its thread."""
        self.server.should_exit = True
        self.thread.join(timeout_s)
