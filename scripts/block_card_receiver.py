#!/usr/bin/env python3
"""The bank's side of SCENARIOS.md §4 for the demo: a small HTTP receiver of Eddy's
webhook (`POST /block-card`, one JSON row per request) that prints each blocked card
once. A request whose Idempotency-Key it has seen before (a retry, or a replay after a
restart) is acknowledged and not printed again.

    python3 scripts/block_card_receiver.py [port]     (default 8099)
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SEEN = set()


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        key = self.headers.get("Idempotency-Key", "")
        if self.path != "/block-card":
            self.send_response(404)
            self.end_headers()
            return
        try:
            row = json.loads(body)
        except ValueError:
            self.send_response(400)
            self.end_headers()
            self.wfile.write(b"not JSON")
            return
        if key not in SEEN:
            SEEN.add(key)
            print(f"BLOCK card {row.get('card_id')} (payment {row.get('payment_id')}, "
                  f"probability {row.get('probability', 0):.4f}, key {key})", flush=True)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8099
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
