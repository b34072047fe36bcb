"""A small local HTTP endpoint standing in for the Kubernetes TokenReview API.

It answers ``POST /tokenreview`` as the API server does: ``status.authenticated``
and ``status.user.username`` for the tokens it knows, and 401 unless the
reviewer's own token authorises the review. It counts the reviews it served.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: Token -> user name the stand-in vouches for.
TOKENS = {"token-of-carol": "carol"}
REVIEWER_TOKEN = "reviewer-secret"


class TokenReviewStandIn:
    """Serves on 127.0.0.1 in a thread; ``url`` is the review endpoint."""

    def __init__(self) -> None:
        self.reviews = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                if self.headers.get("Authorization") != f"Bearer {REVIEWER_TOKEN}":
                    self._answer(401, {"kind": "Status", "message": "Unauthorized"})
                    return
                length = int(self.headers.get("Content-Length") or 0)
                review = json.loads(self.rfile.read(length) or b"{}")
                owner.reviews += 1
                user = TOKENS.get(review.get("spec", {}).get("token", ""))
                status: dict[str, Any] = {"authenticated": user is not None}
                if user is not None:
                    status["user"] = {"username": user, "groups": ["system:authenticated"]}
                self._answer(201, {**review, "status": status})

            def _answer(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/tokenreview"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> TokenReviewStandIn:
        self.thread.start()
        return self

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
