"""Store faults against the real PostgreSQL server, through a TCP proxy the test can cut.

The proxy is a real network hop: stopping it is what a database restart or a
network partition looks like to the service (refused connections, connections
dropped mid-transaction). The service must answer 503 with Retry-After, write
nothing half-way, and recover by itself when the store comes back.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from dealscore_service.store import repository

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


class TcpProxy:
    """Forwards 127.0.0.1:<port> to PostgreSQL; can go down, come back, or cut a connection on a pattern."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.cut_on: bytes | None = None
        self.cuts = 0
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        """Refuse new connections and drop the open ones (the server went away)."""
        if self._listener is not None:
            self._close(self._listener)  # shutdown() wakes the thread blocked in accept(); close() alone does not
            self._listener = None
        with self._lock:
            for c in self._conns:
                self._close(c)
            self._conns.clear()

    @staticmethod
    def _close(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            with self._lock:
                self._conns += [client, server]
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, upstream: bool) -> None:
        try:
            while data := src.recv(65536):
                if upstream and self.cut_on is not None and self.cut_on in data:
                    self.cut_on = None
                    self.cuts += 1
                    self._close(src)
                    self._close(dst)
                    return
                dst.sendall(data)
        except OSError:
            pass
        finally:
            self._close(dst)


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    p = TcpProxy(("127.0.0.1", 5432))
    p.start()
    yield p
    p.stop()


@pytest.fixture
def pg_via_proxy(pg_url: str, proxy: TcpProxy) -> str:
    return pg_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}").replace("?", "?connect_timeout=3&")


def test_readiness_after_a_restart_is_not_fooled_by_a_stale_pooled_connection(
    make_client: Callable[..., TestClient], pg_via_proxy: str, proxy: TcpProxy, trained_model,
    keys: dict[str, str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A server back within a second of its pooled connections' last use: the pool hands one out unchecked, it
    fails, and readiness must ask again (on a fresh connection) instead of reporting the store down."""
    monkeypatch.setattr(repository, "PING_AFTER_IDLE_SECONDS", 3600.0)  # no idle check: always the race's case
    client = make_client(model_path=trained_model.bundle_dir, database_url=pg_via_proxy)
    assert _score(client, trained_model.payload(trained_model.open_ids[0]), keys["crm"]).status_code == 200
    proxy.stop()  # drops the pooled connections
    proxy.start()
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["store"] is True


def _score(client: TestClient, body: dict, key: str):  # type: ignore[no-untyped-def]
    return client.post("/v1/score", json=body, headers={"X-API-Key": key})


def test_store_outage_is_503_writes_nothing_and_recovers(
    make_client: Callable[..., TestClient], pg_via_proxy: str, proxy: TcpProxy, trained_model,
    keys: dict[str, str],
) -> None:
    client = make_client(model_path=trained_model.bundle_dir, database_url=pg_via_proxy)
    store = client.app.state.services.store
    crm = keys["crm"]
    a, b, c = (trained_model.payload(d) for d in trained_model.open_ids[:3])
    assert _score(client, a, crm).status_code == 200

    proxy.stop()
    r = _score(client, b, crm)
    assert r.status_code == 503 and r.headers["retry-after"] == "5"
    err = r.json()["error"]
    assert err["type"] == "StoreUnavailableError" and "nothing was written" in err["message"]
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["store"] is False and ready.json()["model"] is True
    assert client.get("/v1/deals/at-risk", headers={"X-API-Key": keys["manager"]}).status_code == 503
    assert client.get("/healthz").status_code == 200

    proxy.start()
    assert client.get("/readyz").status_code == 200
    assert _score(client, b, crm).status_code == 200
    assert store.count() == 2

    # a connection dropped in the middle of a batch's INSERT: the transaction dies with it
    proxy.cut_on = b"INSERT INTO scores"
    batch = {"deals": [{k: v for k, v in x.items() if k != "as_of"} for x in (c, a)], "as_of": trained_model.as_of}
    r = client.post("/v1/score/batch", json=batch, headers={"X-API-Key": crm})
    assert proxy.cuts == 1
    assert r.status_code == 503, r.text
    assert store.count() == 2, "nothing of the cut batch was stored"
    r = client.post("/v1/score/batch", json=batch, headers={"X-API-Key": crm})
    assert r.status_code == 200 and r.json()["scored"] == 1 and r.json()["replayed"] == 1
    assert store.count() == 3


def test_store_down_at_start_the_service_starts_and_migrates_when_it_returns(
    make_client: Callable[..., TestClient], pg_via_proxy: str, proxy: TcpProxy, trained_model,
    keys: dict[str, str],
) -> None:
    proxy.stop()
    client = make_client(model_path=trained_model.bundle_dir, database_url=pg_via_proxy)
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").json()["store"] is False
    assert _score(client, trained_model.payload(), keys["crm"]).status_code == 503
    proxy.start()
    assert client.get("/readyz").status_code == 200  # migrated on first contact
    assert _score(client, trained_model.payload(), keys["crm"]).status_code == 200
    assert client.app.state.services.store.count() == 1
