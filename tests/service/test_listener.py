"""Per-worker listening sockets: what each worker receives, and a taken port is refused up front."""

from __future__ import annotations

import pickle
import socket

import pytest

from dealscore.errors import ConfigError
from dealscore_service import listener

pytestmark = pytest.mark.skipif(not listener.supported(), reason="SO_REUSEPORT balancing is Linux-only")


def test_each_unpickled_listener_is_its_own_socket_on_the_shared_port() -> None:
    stand_in = listener.ReusePortListener("127.0.0.1", 0)
    try:
        assert stand_in.port > 0
        a, b = pickle.loads(pickle.dumps(stand_in)), pickle.loads(pickle.dumps(stand_in))
        with a, b:
            assert isinstance(a, socket.socket) and a.fileno() != b.fileno()
            assert a.getsockname() == b.getsockname() == ("127.0.0.1", stand_in.port)
            assert a.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 1
            a.listen()
            b.listen()  # both listen at once: the kernel spreads connections over them
            with socket.create_connection(("127.0.0.1", stand_in.port), timeout=5):
                pass
    finally:
        stand_in.close()


def test_a_port_in_use_is_refused_with_the_port_and_the_fix() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"127.0.0.1:{port}") as err:
            listener.ReusePortListener("127.0.0.1", port)
        assert "--port" in err.value.detail["fix"]


def test_a_second_reuse_port_server_cannot_join_a_running_one() -> None:
    first = listener.bind_reuse_port("127.0.0.1", 0)
    with first:
        first.listen()
        with pytest.raises(ConfigError, match="in use"):
            listener.ReusePortListener("127.0.0.1", first.getsockname()[1])
