"""``dealscore serve`` as a real uvicorn process: it serves, and a model reload under load drops nothing."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psutil
import pytest

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(
    trained_model, keys_file, tmp_path: Path, workers: int = 1, **settings: str,
) -> Iterator[tuple[str, Path, subprocess.Popen]]:
    bundle = tmp_path / "bundle"
    shutil.copytree(trained_model.bundle_dir, bundle)
    port = _free_port()
    env = {**os.environ, "DEALSCORE_DATA_DIR": str(tmp_path / "data"), "DEALSCORE_MODEL_PATH": str(bundle),
           "DEALSCORE_API_KEYS_FILE": str(keys_file[0]), "DEALSCORE_USE_REGISTRY": "false",
           **{f"DEALSCORE_{k.upper()}": v for k, v in settings.items()}}
    log = (tmp_path / "server.log").open("w")
    exe = Path(sys.executable).parent / "dealscore"
    proc = subprocess.Popen([str(exe), "serve", "--port", str(port), "--workers", str(workers),
                             "--log-level", "warning"], env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.3)
    try:
        assert proc.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
        yield base, bundle, proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


@pytest.fixture
def server(trained_model, keys_file, tmp_path: Path) -> Iterator[tuple[str, Path, subprocess.Popen]]:
    yield from _start(trained_model, keys_file, tmp_path)


@pytest.fixture
def two_workers(trained_model, keys_file, tmp_path: Path) -> Iterator[tuple[str, Path, subprocess.Popen]]:
    yield from _start(trained_model, keys_file, tmp_path, workers=2)


def test_serve_answers_and_reloads_without_dropping_requests(server, trained_model, keys: dict[str, str]) -> None:
    base, bundle, _proc = server
    crm = {"X-API-Key": keys["crm"]}
    assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{base}/docs").status_code == 200

    # a second bundle version where the service looks for it
    staged = bundle.parent / "staged"
    shutil.copytree(bundle, staged)
    manifest = json.loads((staged / "bundle.json").read_text())
    manifest["version"] = "dealscore/8"
    (staged / "bundle.json").write_text(json.dumps(manifest))

    results: list[tuple[int, str | None]] = []
    stop = threading.Event()

    def load() -> None:
        body = trained_model.payload()
        with httpx.Client(base_url=base, headers=crm, timeout=30) as c:
            i = 0
            while not stop.is_set():
                i += 1
                r = c.post("/v1/score", json={**body, "amount": 1000 + i})  # new content each time: really scored
                results.append((r.status_code, r.json().get("model_version")))

    def wait_for(done: Callable[[], bool]) -> None:
        """Wait on what the requests answered, not on the clock: a busy machine may stall for a second."""
        deadline = time.monotonic() + 60
        while not done() and time.monotonic() < deadline:
            time.sleep(0.05)

    worker = threading.Thread(target=load)
    worker.start()
    wait_for(lambda: len(results) >= 3)  # a few answered by the old model
    old = bundle.parent / "old"
    bundle.rename(old)
    staged.rename(bundle)
    r = httpx.post(f"{base}/v1/model/reload", headers={"X-API-Key": keys["admin"]}, timeout=60)
    after = len(results)
    wait_for(lambda: len(results) >= after + 3)  # a few more, once swapped
    stop.set()
    worker.join(timeout=60)
    assert r.status_code == 200 and r.json()["previous_version"] == "dealscore/7" and r.json()["changed"]
    statuses = {s for s, _ in results}
    versions = [v for _, v in results]
    assert statuses == {200}, results
    assert set(versions) == {"dealscore/7", "dealscore/8"}, "requests ran before and after the swap"
    assert versions == sorted(versions), "once swapped, the new model answers every request"
    metrics = httpx.get(f"{base}/metrics").text
    assert 'dealscore_model_info{source="path",version="dealscore/8"} 1.0' in metrics


def _tcp(proc: psutil.Process, port: int, status: str) -> int:
    return sum(1 for c in proc.net_connections(kind="tcp") if c.laddr and c.laddr.port == port and c.status == status)


def test_connections_opened_together_spread_over_the_workers(two_workers) -> None:
    """A client opening its keep-alive pool in a burst must not land it all on one worker.

    uvicorn's shared socket let the first worker to wake accept every pending
    connection, leaving the other idle (half the throughput of two workers); with it
    this burst ended 16 to 0 in one of three tries. With a socket per worker, a 16-to-0 split has odds
    of 2 in 65,536.
    """
    base, _bundle, proc = two_workers
    port = int(base.rsplit(":", 1)[1])
    workers: list[psutil.Process] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # both workers listen once their app has started
        workers = [w for w in psutil.Process(proc.pid).children(recursive=True) if _tcp(w, port, "LISTEN")]
        if len(workers) == 2:
            break
        time.sleep(0.2)
    assert len(workers) == 2, "two workers, each with its own listening socket"

    async def burst() -> list[int]:
        # a client opening its pool: 16 connections at once, then a request on each, back to back
        opened = await asyncio.gather(*(asyncio.open_connection("127.0.0.1", port) for _ in range(16)))
        try:
            for _ in range(3):
                for _, writer in opened:
                    writer.write(f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
                for reader, _ in opened:
                    head = await reader.readuntil(b"\r\n\r\n")
                    assert head.startswith(b"HTTP/1.1 200"), head
                    length = int(next(ln.split(b":")[1] for ln in head.lower().split(b"\r\n")
                                      if ln.startswith(b"content-length")))
                    await reader.readexactly(length)
            return [_tcp(w, port, "ESTABLISHED") for w in workers]
        finally:
            for _, writer in opened:
                writer.close()

    held = asyncio.run(burst())
    assert sum(held) == 16 and min(held) >= 1, f"connections per worker: {held}"


@pytest.fixture
def impatient_server(trained_model, keys_file, tmp_path: Path) -> Iterator[tuple[str, Path, subprocess.Popen]]:
    yield from _start(trained_model, keys_file, tmp_path, timeout_request_head_seconds="1",
                      timeout_request_body_seconds="1", timeout_keep_alive_seconds="1")


def _until_closed(sock: socket.socket, limit: float = 10.0) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and how long that took."""
    sock.settimeout(limit)
    started = time.monotonic()
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data, time.monotonic() - started
        data += chunk


def test_slow_and_silent_clients_are_timed_out(impatient_server, keys: dict[str, str]) -> None:
    """Slowloris headers, a trickled body and a silent connection each end in about the configured second."""
    base, _bundle, _proc = impatient_server
    port = int(base.rsplit(":", 1)[1])
    # a connection that never sends anything
    with socket.create_connection(("127.0.0.1", port)) as s:
        data, took = _until_closed(s)
    assert data.startswith(b"HTTP/1.1 408") and b"RequestTimeoutError" in data and 0.8 < took < 5, (data, took)
    # slow headers: the request line and a header, a byte now and then, never the blank line
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        with contextlib.suppress(OSError):
            for byte in b"X-Slow: 1234567890":
                s.sendall(bytes([byte]))
                time.sleep(0.2)
                if time.monotonic() - started > 3:
                    break
        data, _ = _until_closed(s)
    assert data.startswith(b"HTTP/1.1 408"), data
    assert time.monotonic() - started < 6
    # a slow body: the head promises 1,000 bytes, 10 arrive
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(f"POST /v1/score HTTP/1.1\r\nHost: x\r\nX-API-Key: {keys['crm']}\r\n"
                  "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"deal_id\"".encode())
        data, took = _until_closed(s)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408") and 0.8 < took < 5, (data, took)
    assert json.loads(body)["error"]["type"] == "RequestTimeoutError"
    # an idle keep-alive connection after a complete request
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        data, took = _until_closed(s)
    assert data.startswith(b"HTTP/1.1 200") and b'{"status":"ok"}' in data and took < 5
    # a prompt client is served as before
    assert httpx.get(f"{base}/healthz").status_code == 200
