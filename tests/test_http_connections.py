"""The HTTP layer's connections: one per calling thread up to the limit, a shared pool beyond,
and a finished thread's connection handed to the next thread."""

from __future__ import annotations

import threading

import httpx

from taxbridge.backends._http import ThreadConnections


def _in_thread(connections: ThreadConnections) -> httpx.BaseTransport:
    found: list[httpx.BaseTransport] = []
    thread = threading.Thread(target=lambda: found.append(connections.transport()))
    thread.start()
    thread.join()
    return found[0]


def test_each_thread_has_its_own_connection_up_to_the_limit_then_they_share() -> None:
    connections = ThreadConnections(2)
    try:
        here = connections.transport()
        assert connections.transport() is here
        barrier = threading.Barrier(3)
        seen: list[httpx.BaseTransport] = []

        def hold() -> None:
            seen.append(connections.transport())
            barrier.wait()

        threads = [threading.Thread(target=hold) for _ in range(2)]
        for thread in threads:
            thread.start()
        barrier.wait()
        assert here is not connections.shared
        assert seen.count(connections.shared) == 1  # the third thread: over the limit
        (other,) = [transport for transport in seen if transport is not connections.shared]
        assert other is not here
        for thread in threads:
            thread.join()
    finally:
        connections.close()


def test_a_finished_threads_connection_goes_to_the_next_thread() -> None:
    connections = ThreadConnections(1)
    try:
        first = _in_thread(connections)
        assert first is not connections.shared
        assert _in_thread(connections) is first
    finally:
        connections.close()


def test_closing_closes_every_connection() -> None:
    from taxbridge.testing.fake_avatax import FakeAvaTax, serve

    connections = ThreadConnections(4)
    with serve(FakeAvaTax()) as url:
        request = httpx.Request("GET", f"{url}/api/v2/utilities/ping")
        own = connections.transport()
        for transport in (own, connections.shared):
            transport.handle_request(request).read()
        pools = [own._pool, connections.shared._pool]  # type: ignore[attr-defined]
        assert [len(pool.connections) for pool in pools] == [1, 1]
        connections.close()
        assert [len(pool.connections) for pool in pools] == [0, 0]
