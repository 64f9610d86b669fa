"""``/metrics`` on a port of its own, served by a thread beside the event loop.

On the service's own port, ``/metrics`` shares the front door with the border's traffic: anyone
who can send a portrait can read the detector's internals, and a slow scrape competes with
predictions for the event loop. With ``VAMPIRE_METRICS_PORT`` set, the service answers
``/metrics`` only on that port, from a small threaded HTTP server (the standard library's), and
the network policy lets only Prometheus reach it.

With several worker processes sharing ``PROMETHEUS_MULTIPROC_DIR``, the first worker to bind the
port serves it for all (each one's exposition reads every worker's files); the others say so in
the log and carry on.

Introduced in Chapter 12.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from vampire_detector.service.metrics import negotiate

log = logging.getLogger("vampire_detector.service.metrics_port")
READ_TIMEOUT_S = 5.0  # a scraper that stalls mid-request loses its connection, not a thread


class MetricsPort:
    """A threaded HTTP server whose one route, ``GET /metrics``, returns ``exposition()``,
    or ``exposition(True)`` (OpenMetrics, with exemplars) when the scraper asks for it."""

    def __init__(self, exposition: Callable[..., bytes], host: str, port: int):
        self.exposition, self.host, self.port = exposition, host, port
        self.server: ThreadingHTTPServer | None = None

    def start(self) -> bool:
        """Listen and serve on a daemon thread; False when another process holds the port."""
        try:
            self.server = ThreadingHTTPServer((self.host, self.port), self._handler())
        except OSError as error:
            log.warning("metrics port %s:%s not served here: %s", self.host, self.port, error)
            return False
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]  # the real one when 0 asked for any
        threading.Thread(target=self.server.serve_forever, name="metrics-port",
                         daemon=True).start()
        return True

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        exposition = self.exposition

        class Handler(BaseHTTPRequestHandler):
            timeout = READ_TIMEOUT_S

            def do_GET(self) -> None:
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404, "only /metrics is served on this port")
                    return
                wanted, content_type = negotiate(self.headers.get("Accept"))
                body = exposition(True) if wanted else exposition()
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass  # a scrape every few seconds is not news

        return Handler
