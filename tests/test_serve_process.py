"""`facescan serve` as a process on loopback: concurrent requests each get their own answer,
SIGTERM drains the requests in flight and a restart serves again, a busy service answers 503,
and a service that cannot start exits 2 with one line.

In-flight requests are made deterministic with `Expect: 100-continue`: the server answers
"100 Continue" only once the app is reading the body, so the test knows the request is inside
the service before it sends the signal, and sends the body after."""

from __future__ import annotations

import hashlib
import random
import signal
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from commands import Served, facescan
from conftest import build_red_model
from images import png_bytes
from PIL import Image

httpx = pytest.importorskip("httpx", reason="needs httpx (the [dev] extra)")
pytest.importorskip("uvicorn", reason="needs the [serve] extra: pip install 'facescan[serve]'")

WAIT_S = 30.0  # the longest any condition below is waited for


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_red_model(tmp_path_factory.mktemp("model") / "red.onnx")


def coloured(rgb: tuple[int, int, int]) -> bytes:
    return png_bytes(Image.new("RGB", (24, 24), rgb))


def eventually(condition: Callable[[], bool]) -> None:
    """Wait for a state (never for a duration): polls until `condition` holds, or fails."""
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def metric(url: str, name: str) -> float:
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


class HeldRequest:
    """A raw `POST /v1/scan` whose body is sent when the test says so."""

    def __init__(self, port: int, body: bytes, name: str, expect_continue: bool = True) -> None:
        self.body = body
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT_S)
        head = (
            f"POST /v1/scan?name={name} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: image/png\r\nContent-Length: {len(body)}\r\n"
        )
        if expect_continue:
            head += "Expect: 100-continue\r\n"
        self.sock.sendall(head.encode() + b"\r\n")
        self.received = b""

    def wait_for_continue(self) -> None:
        """Returns once the app has started reading this request's body."""
        while b"\r\n\r\n" not in self.received:
            self.received += self.sock.recv(65536)
        assert self.received.startswith(b"HTTP/1.1 100 Continue"), self.received
        self.received = self.received.split(b"\r\n\r\n", 1)[1]

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def answer(self) -> tuple[int, dict[str, str], bytes]:
        """Status, headers (lower-case names) and body of the response."""
        while b"\r\n\r\n" not in self.received:
            self.received += self.sock.recv(65536)
        head, body = self.received.split(b"\r\n\r\n", 1)
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
        while len(body) < int(headers["content-length"]):
            body += self.sock.recv(65536)
        self.sock.close()
        return int(status_line.split()[1]), headers, body


def test_concurrent_requests_each_get_their_own_answers(model: Path) -> None:
    """32 clients, 480 requests of 1 to 3 distinct images: every answer holds the rows of its
    own request's images (their sha256), in order, with their own scores."""
    clients, per_client = 32, 15
    colours = random.Random(3).sample(range(256**3), clients * per_client * 3)  # all distinct
    problems: list[str] = []

    def client(index: int, url: str) -> None:
        rng = random.Random(index)
        with httpx.Client(base_url=url, timeout=WAIT_S) as http:
            for request in range(per_client):
                start = (index * per_client + request) * 3
                rgbs = [(c >> 16, (c >> 8) & 255, c & 255) for c in colours[start : start + 3]]
                images = [coloured(rgb) for rgb in rgbs[: rng.randint(1, 3)]]
                files = [("file", (f"{i}.png", data, "image/png")) for i, data in enumerate(images)]
                rows = http.post("/v1/scan", files=files).json()["results"]
                sent = [hashlib.sha256(data).hexdigest() for data in images]
                scores = [rgb[0] / 255 for rgb in rgbs[: len(images)]]  # the red model's answer
                if [r["sha256"] for r in rows] != sent or any(
                    abs(r["score"] - score) > 1e-6 for r, score in zip(rows, scores, strict=True)
                ):
                    problems.append(f"client {index}, request {request}: {rows}")

    with Served("--model", model, "--batch-wait-ms", "5", "--provider", "cpu") as server:
        assert server.url.startswith("http://127.0.0.1:")  # loopback unless told otherwise
        threads = [threading.Thread(target=client, args=(i, server.url)) for i in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        scored = metric(server.url, "facescan_batched_images_total")
        assert metric(server.url, "facescan_queue_images") == 0
    assert problems == []
    assert scored >= clients * per_client  # every image went through the batcher


def test_sigterm_drains_requests_in_flight_then_a_restart_serves(model: Path) -> None:
    images = {f"in-flight-{v}.png": coloured((v, 0, 0)) for v in (255, 102, 51)}
    server = Served("--model", model, "--provider", "cpu")
    port = server.port
    held = [HeldRequest(port, data, name) for name, data in images.items()]
    for request in held:
        request.wait_for_continue()  # inside the app, reading its body
    server.process.send_signal(signal.SIGTERM)

    def refused() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except ConnectionRefusedError:
            return True
        return False

    eventually(refused)  # draining: no new connection is taken...
    assert server.process.poll() is None  # ...but the process waits for the ones it holds
    for request in held:
        request.send(request.body)
    for (name, data), request in zip(images.items(), held, strict=True):
        status, _, body = request.answer()
        assert status == 200, body
        (row,) = httpx.Response(200, content=body).json()["results"]
        assert (row["path"], row["sha256"]) == (name, hashlib.sha256(data).hexdigest())
        assert row["status"] == "ok"
    assert server.stop() == 143  # drained, then the scan command's SIGTERM status

    with Served("--model", model, "--provider", "cpu", port=port) as again:
        assert again.port == port
        response = httpx.post(
            f"{again.url}/v1/scan",
            content=coloured((255, 0, 0)),
            headers={"content-type": "image/png"},
        )
        assert response.json()["results"][0]["score"] == pytest.approx(1.0)


def test_a_busy_service_answers_503_with_retry_after(model: Path) -> None:
    args = ("--model", model, "--max-request-bytes", 1000, "--max-buffered-bytes", 1000)
    with Served(*args) as server:
        first = HeldRequest(server.port, b"x" * 1000, "first", expect_continue=False)
        first.send(first.body[:600])
        eventually(lambda: metric(server.url, "facescan_buffered_bytes") == 600)
        busy = httpx.post(
            f"{server.url}/v1/scan", content=b"y" * 600, headers={"content-type": "image/png"}
        )
        assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
        assert "bytes of uploads held" in busy.json()["error"]
        first.send(first.body[600:])
        status, _, body = first.answer()
        assert status == 200 and b"not a supported image" in body  # its own row, an error
        assert metric(server.url, "facescan_buffered_bytes") == 0
        again = httpx.post(
            f"{server.url}/v1/scan", content=b"y" * 600, headers={"content-type": "image/png"}
        )
        assert again.status_code == 200


def test_a_service_that_cannot_start_exits_2(model: Path, tmp_path: Path) -> None:
    done = facescan("serve", "--model", tmp_path / "missing.onnx")
    assert done.returncode == 2 and "model file not found" in done.stderr
    done = facescan("serve", "--queue", "0", "--batch-wait-ms", "5000")
    assert done.returncode == 2
    assert "--queue must be at least 1" in done.stderr and "--batch-wait-ms" in done.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = facescan("serve", "--model", model, "--port", port)
    assert done.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in done.stderr
