"""The real bridge (the Flask app with its backend) on a loopback port in a thread, stopping by itself."""

from __future__ import annotations

import dataclasses
import threading

from werkzeug.serving import make_server

from rest_bridge.app import create_app
from rest_bridge.settings import BridgeSettings


class BridgeThread:
    """``BridgeThread(target, **settings)``; ``policy`` changes constants of ``BridgePolicy`` (``max_jobs``...)."""

    def __init__(self, backend: str, *, policy: dict | None = None, **settings):
        self.settings = BridgeSettings(backend=backend, host="127.0.0.1", port=0, **settings)
        self.app = create_app(self.settings, policy=dataclasses.replace(self.settings.policy(), **(policy or {})))
        self.backend = self.app.extensions["sentiment_backend"]
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.thread.join(10)
        self.backend.close()
