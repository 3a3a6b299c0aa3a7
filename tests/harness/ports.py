"""Free TCP ports on the loopback interface."""

from __future__ import annotations

import contextlib
import socket

LOOPBACK = "127.0.0.1"


def _is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def free_ports(count: int) -> list[int]:
    """Return count distinct ports that are free on 127.0.0.1 now.

    NOTE: another process can take a port before the component binds it.
    The component then fails to start, and its log names the port.
    """
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            listener = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            listener.bind((LOOPBACK, 0))
            ports.append(listener.getsockname()[1])
    return ports


def free_port_with_offset(offset: int, *, reserved_ports: set[int]) -> tuple[int, int]:
    """Return a free port p with p + offset also free, neither in reserved_ports, and add both to it.

    Some servers derive a second port by adding a fixed offset (SeaweedFS
    adds 10000 for gRPC), and a few of their clients ignore an explicit
    setting for it.
    """
    for _ in range(200):
        (port,) = free_ports(1)
        partner = port + offset
        if partner > 65535 or port in reserved_ports or partner in reserved_ports:
            continue
        if _is_free(partner):
            reserved_ports.update((port, partner))
            return port, partner
    raise RuntimeError(f"found no free loopback port p with p + {offset} also free after 200 tries")
