"""The daemon's HTTP API over its Unix socket, for the GPU check scripts beside this file
(they run as `python3 scripts/gpu/NAME.py`, so this directory is on their import path)."""
import http.client
import json
import socket


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=120)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def api_client(sock_path):
    """api(method, path) -> the JSON body (None when empty), one connection a request."""

    def api(method, path):
        c = UnixConnection(sock_path)
        c.request(method, path)
        r = c.getresponse()
        body = r.read().decode()
        c.close()
        return json.loads(body) if body else None

    return api
