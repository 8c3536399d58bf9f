"""A local Alertmanager webhook receiver: appends each notification to a JSON-lines file.

Standard library only, so the unprivileged service user runs it with the system python3.
"""

from __future__ import annotations

import argparse
import json
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listen", required=True, help="host:port")
    parser.add_argument("--out", required=True, help="JSON-lines file to append to")
    args = parser.parse_args()
    host, _, port = args.listen.rpartition(":")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            self.send_response(200 if self.path == "/health" else 404)
            self.end_headers()

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            try:
                payload = json.loads(body)
            except ValueError:
                self.send_response(400)
                self.end_headers()
                return
            with open(args.out, "a") as handle:
                handle.write(json.dumps({"received_at": time.time(), "payload": payload}) + "\n")
            self.send_response(200)
            self.end_headers()

        def log_message(self, fmt: str, *fargs: object) -> None:
            pass

    ThreadingHTTPServer((host, int(port)), Handler).serve_forever()


if __name__ == "__main__":
    main()
