"""The sandbox harness: loopback only, TLS, routes, fault injection, request counting."""
from __future__ import annotations

import pytest
import requests

from sandbox.server import Faults, Response, SandboxServer


def make(tls=False, faults=None) -> SandboxServer:
    server = SandboxServer("t", tls=tls, faults=faults)

    @server.route("GET", r"/items/(?P<item_id>\d+)")
    def item(request):
        return Response.json({"id": request.params["item_id"], "q": request.arg("q")})

    return server


def test_binds_loopback_on_a_free_port():
    """Servers listen on 127.0.0.1 and two never collide."""
    with make() as one, make() as two:
        assert one.url.startswith("http://127.0.0.1:") and one.port != two.port
        assert requests.get(f"{one.url}/items/7?q=x", timeout=5).json() == {"id": "7", "q": "x"}


def test_tls_with_its_own_certificate():
    """With tls=True it serves https that a client trusting its certificate accepts, and others refuse."""
    with make(tls=True) as server:
        assert server.url.startswith("https://")
        assert requests.get(f"{server.url}/items/1", verify=str(server.cert_path), timeout=5).json()["id"] == "1"
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(f"{server.url}/items/1", timeout=5)


def test_unknown_route_is_404():
    """Requests no route matches get a JSON 404."""
    with make() as server:
        response = requests.get(f"{server.url}/nope", timeout=5)
        assert response.status_code == 404 and "no route" in response.json()["error"]


def test_fail_next_injects_exact_faults():
    """fail_next answers the next N matching requests with the status, 429s with Retry-After."""
    with make() as server:
        server.faults.fail_next(2, status=429)
        statuses = [requests.get(f"{server.url}/items/1", timeout=5) for _ in range(3)]
        assert [r.status_code for r in statuses] == [429, 429, 200]
        assert statuses[0].headers["Retry-After"]
        assert server.requests.statuses[429] == 2 and server.requests.by_route["item"] == 3


def test_random_fault_rates_are_reproducible():
    """The same seed gives the same sequence of injected faults."""
    def sequence():
        with make(faults=Faults(rate_429=0.3, rate_5xx=0.2, seed=11)) as server:
            return [requests.get(f"{server.url}/items/1", timeout=5).status_code for _ in range(20)]

    first = sequence()
    assert first == sequence() and {429, 503, 200} <= set(first)


def test_latency_is_added_to_every_request(monkeypatch):
    """The latency knob sleeps that long before each answer."""
    import sandbox.server

    slept = []
    monkeypatch.setattr(sandbox.server.time, "sleep", slept.append)
    with make(faults=Faults(latency_seconds=0.05)) as server:
        for _ in range(3):
            requests.get(f"{server.url}/items/1", timeout=5)
    assert slept == [0.05, 0.05, 0.05]


def test_max_in_window_counts_requests_per_window():
    """The request log reports the busiest sliding window."""
    with make() as server:
        for _ in range(4):
            requests.get(f"{server.url}/items/1", timeout=5)
        assert server.requests.max_in_window(60) == 4
        assert server.requests.total == 4
