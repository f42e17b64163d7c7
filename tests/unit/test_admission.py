"""When a paid POST is turned away with 503 + Retry-After (api/admission.py): the pure decision, and
the API's listening socket (api/processes.py) that answers keep-alive requests without delay."""

from __future__ import annotations

import socket

import pytest

from api.admission import should_shed
from api.backlog import over_backlog
from api.processes import listening_socket


@pytest.mark.parametrize(
    ("in_flight", "oldest_wait", "shed"),
    [
        (0, 0.0, False),  # idle
        (63, 30.0, False),  # below the floor: a few slow requests do not close the door
        (5000, 0.5, False),  # a storm, answered in time
        (64, 1.0, False),  # exactly half the deadline
        (64, 1.01, True),  # beyond it: a newcomer would wait about as long, or longer
    ],
)
def test_a_newcomer_is_turned_away_only_when_the_queue_is_too_slow(
    in_flight: int, oldest_wait: float, shed: bool
) -> None:
    assert should_shed(in_flight, oldest_wait, deadline=2.0, floor=64) is shed


def test_the_listening_socket_is_tcp_with_nodelay_and_shares_its_port() -> None:
    """asyncio sets TCP_NODELAY only on sockets whose protocol says TCP: without it a keep-alive
    answer written in two parts waits for the client's delayed ACK."""
    first = listening_socket("127.0.0.1", 0, 16)
    port = first.getsockname()[1]
    second = listening_socket("127.0.0.1", port, 16)  # SO_REUSEPORT: a second worker, same port
    try:
        for sock in (first, second):
            assert sock.proto == socket.IPPROTO_TCP
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 1
    finally:
        first.close()
        second.close()


@pytest.mark.parametrize(
    ("backlog", "limit", "over"),
    [
        (0, 1000, False),
        (1000, 1000, False),  # at the limit: still let in
        (1001, 1000, True),  # beyond it
        (10**6, 0, False),  # 0: no limit
    ],
)
def test_the_settlement_backlog_turns_newcomers_away_only_beyond_its_limit(
    backlog: int, limit: int, over: bool
) -> None:
    assert over_backlog(backlog, limit) is over
