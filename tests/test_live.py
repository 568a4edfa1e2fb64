"""The harness's own promise: the ports `free_port` hands out for the servers tests start."""

import socket

from tests.live import _ephemeral_ports, free_port


def test_free_ports_are_outside_the_range_of_outgoing_connections_and_never_handed_out_twice():
    ephemeral = _ephemeral_ports()
    ports = [free_port() for _ in range(200)]

    assert len(set(ports)) == len(ports)
    assert all(1024 <= port < ephemeral.start for port in ports), ports
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", ports[-1]))  # nothing listens on it


def test_a_port_something_listens_on_is_passed_over():
    with socket.socket() as listener, socket.socket() as other:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        other.bind(("127.0.0.1", 0))
        taken, free = listener.getsockname()[1], other.getsockname()[1]
        other.close()

        assert free_port(iter([taken, free])) == free
