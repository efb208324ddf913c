"""Slow and abandoned clients, over real sockets: deadlines for a request's headers and body
(``[server] header_timeout_seconds`` / ``body_timeout_seconds``, 1 s here), and a client that
disconnects stops its request's upstream calls (the emulators' request logs say so).

Time bounds are seconds-scale: a deadline of 1 s must close the connection within 5 s.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from gateway.demo import demo_config
from gateway.edge.app import create_app
from gateway.edge.serving import ServerThread
from gateway.emulators.common import Fault
from gateway.ids import NodeKey, NodeType, encode_id
from tests.conftest import UNCACHED, RunningEmulator, RunningGateway

Emulators = dict[str, RunningEmulator]
DEADLINE = 1.0  # both read deadlines of the test gateway
BOUND = 5.0  # what "within the deadline" means here: seconds-scale, whatever the machine's load


@pytest.fixture(scope="module")
def strict(emulator_servers: Emulators) -> Iterator[tuple[str, int]]:
    """A gateway whose read deadlines are 1 s; yields (host, port)."""
    config = demo_config({kind: e.url for kind, e in emulator_servers.items()},
                         defaults=UNCACHED)
    server = config.server.model_copy(update={"header_timeout_seconds": DEADLINE,
                                              "body_timeout_seconds": DEADLINE})
    with ServerThread({"gw": create_app(config.model_copy(update={"server": server}))}) as s:
        host, port = s.bound["gw"].sock.getsockname()[:2]
        yield host, port


@pytest.fixture
def server_errors() -> Iterator[list[logging.LogRecord]]:
    """uvicorn's error log (an exception in the app lands there) during the test."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep(logging.ERROR)
    logger = logging.getLogger("uvicorn.error")
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


def connect(address: tuple[str, int]) -> socket.socket:
    sock = socket.create_connection(address, timeout=BOUND * 2)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def timeout_answer(raw: bytes) -> dict[str, object]:
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 "), raw
    assert b"content-type: application/json" in head.lower(), raw
    assert b"connection: close" in head.lower(), raw
    assert b"server:" not in head.lower(), raw
    answer: dict[str, object] = json.loads(body)
    return answer


def test_half_headers_get_408_within_the_header_deadline(strict: tuple[str, int]) -> None:
    with connect(strict) as sock:
        started = time.monotonic()
        sock.sendall(b"POST /graphql HTTP/1.1\r\nHost: gw\r\nContent-Type: appl")
        raw = read_until_closed(sock)
        elapsed = time.monotonic() - started

    assert elapsed < BOUND
    assert timeout_answer(raw) == {"errors": [{
        "message": "the request's headers did not arrive within 1 s",
        "extensions": {"code": "REQUEST_TIMEOUT"}}]}


def test_a_request_line_sent_byte_by_byte_still_has_one_deadline(
        strict: tuple[str, int]) -> None:
    # Every byte arriving is no reason to wait longer: the deadline is for the whole headers.
    request = b"GET /healthz HTTP/1.1\r\nHost: gw\r\nX-Slow: " + b"a" * 100
    with connect(strict) as sock:
        sock.settimeout(0.25)
        started = time.monotonic()
        raw = b""
        for byte in request:
            try:
                sock.send(bytes([byte]))
                raw += sock.recv(65536)
                break  # an answer (or the end of the connection) arrived
            except TimeoutError:
                continue
            except OSError:
                break
        sock.settimeout(BOUND)
        raw += read_until_closed(sock)
        elapsed = time.monotonic() - started

    assert elapsed < BOUND
    assert timeout_answer(raw)["errors"] == [{
        "message": "the request's headers did not arrive within 1 s",
        "extensions": {"code": "REQUEST_TIMEOUT"}}]


def test_a_connection_that_sends_nothing_is_closed(strict: tuple[str, int]) -> None:
    with connect(strict) as sock:
        started = time.monotonic()
        raw = read_until_closed(sock)
        elapsed = time.monotonic() - started

    assert raw == b""  # nothing was asked: nothing is answered
    assert elapsed < BOUND


def test_the_next_request_on_a_kept_alive_connection_has_the_deadline_too(
        strict: tuple[str, int]) -> None:
    with connect(strict) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n")
        first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200 "), first
        started = time.monotonic()
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHo")
        raw = read_until_closed(sock)
        elapsed = time.monotonic() - started

    assert elapsed < BOUND
    assert timeout_answer(raw)["errors"] == [{
        "message": "the request's headers did not arrive within 1 s",
        "extensions": {"code": "REQUEST_TIMEOUT"}}]


def test_a_client_still_sending_after_the_408_still_reads_it(strict: tuple[str, int]) -> None:
    # It keeps sending its body past the deadline before it reads: the answer must not be
    # lost to a reset (the connection lingers, dropping what arrives, before it closes).
    with connect(strict) as sock:
        sock.sendall(b"POST /graphql HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100000\r\n\r\n{")
        time.sleep(1.5)  # past the body deadline: the 408 is sent
        for _ in range(20):
            sock.send(b" " * 100)
            time.sleep(0.02)
        raw = read_until_closed(sock)

    assert timeout_answer(raw) == {"errors": [{
        "message": "the request's body did not arrive within 1 s",
        "extensions": {"code": "REQUEST_TIMEOUT"}}]}


def test_a_body_trickled_a_byte_a_second_gets_408_within_the_body_deadline(
        strict: tuple[str, int], server_errors: list[logging.LogRecord]) -> None:
    body = json.dumps({"query": "{ sources { id } }"}).encode()
    with connect(strict) as sock:
        sock.sendall(b"POST /graphql HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body))
        started = time.monotonic()
        sock.settimeout(1.0)  # a byte a second, until the server answers or closes
        raw = b""
        for byte in body:
            try:
                sock.send(bytes([byte]))
                raw += sock.recv(65536)
                break
            except TimeoutError:
                continue
            except OSError:
                break
        sock.settimeout(BOUND)
        raw += read_until_closed(sock)
        elapsed = time.monotonic() - started

    assert elapsed < BOUND
    assert timeout_answer(raw) == {"errors": [{
        "message": "the request's body did not arrive within 1 s",
        "extensions": {"code": "REQUEST_TIMEOUT"}}]}
    assert server_errors == []  # the endpoint saw a disconnect, not an error


def test_a_body_in_time_is_answered(strict: tuple[str, int]) -> None:
    """Within the deadlines nothing changes: a body in two parts, a short pause between."""
    body = json.dumps({"query": "{ sources { id } }"}).encode()
    with connect(strict) as sock:
        sock.sendall(b"POST /graphql HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
                     + body[:10])
        time.sleep(0.1)
        sock.sendall(body[10:])
        raw = read_until_closed(sock)

    head, _, answer = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), raw
    assert json.loads(answer)["data"]["sources"][0] == {"id": "carecloud"}


# -- a client that disconnects -------------------------------------------------------------------

LATENCY_MS = 1000  # each Comestri answer; 100 lookups at 20 in flight take five such waves
NODES = "query Many($ids: [ID!]!) { nodes(ids: $ids) { id } }"


def comestri_ids(count: int, first: int) -> list[str]:
    """Ids of Comestri products no test asks for otherwise (unknown ones: each costs a call)."""
    return [encode_id(NodeKey(NodeType.PRODUCT, "comestri", str(n)))
            for n in range(first, first + count)]


def raw_post_request(address: str, query: str, variables: dict[str, object]) -> bytes:
    """The bytes of a GraphQL POST to ``address``, for a client on a bare socket."""
    body = json.dumps({"query": query, "variables": variables}).encode()
    host = address.removeprefix("http://")
    return (b"POST /graphql HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % (host.encode(), len(body)) + body)


def test_a_client_that_leaves_after_half_a_second_costs_no_further_upstream_request(
        gateway_server: RunningGateway, emulator: Callable[[str], RunningEmulator],
        server_errors: list[logging.LogRecord]) -> None:
    comestri = emulator("comestri")
    comestri.faults.set(Fault(latency_ms=LATENCY_MS))
    host, port = gateway_server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=BOUND) as sock:
        sock.sendall(raw_post_request(gateway_server.url, NODES,
                                      {"ids": comestri_ids(100, first=9_000_000)}))
        time.sleep(0.5)
        # On a busy machine the first wave may not have reached Comestri yet: leave once it has.
        deadline = time.monotonic() + BOUND
        while comestri.log.arrived == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        left = time.monotonic()
    # Had the query gone on, its second wave would start about a second in, the last about
    # four seconds later; 2.5 s is enough to see the second.
    time.sleep(2.5)

    records = comestri.log.records
    assert records, "the query had started before the client left"
    late = [r for r in records if r.started > left + 0.3]
    assert late == [], f"{len(late)} upstream requests after the client left"
    assert len(records) <= 20  # the first wave at most: max_concurrency
    assert server_errors == []


def test_a_call_shared_with_a_request_still_waiting_goes_on_for_it(
        gateway_server: RunningGateway, emulator: Callable[[str], RunningEmulator]) -> None:
    comestri = emulator("comestri")
    comestri.faults.set(Fault(latency_ms=LATENCY_MS))
    ids = comestri_ids(3, first=8_000_000)
    host, port = gateway_server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=BOUND) as leaver, \
            httpx.Client(timeout=30) as stayer, ThreadPoolExecutor(1) as pool:
        leaver.sendall(raw_post_request(gateway_server.url, NODES, {"ids": ids}))
        time.sleep(0.2)  # its three calls are on their way; the second request joins them
        staying = pool.submit(stayer.post, f"{gateway_server.url}/graphql",
                              json={"query": NODES, "variables": {"ids": ids}})
        time.sleep(0.3)
        leaver.close()  # half a second in: the other request still waits for the calls
        response = staying.result(timeout=30)

    assert response.status_code == 200
    assert response.json() == {"data": {"nodes": [None, None, None]}}  # unknown ids: null
    records = comestri.log.records
    assert len(records) == 3  # shared by both requests, and not cancelled with the first
    assert all(r.status == 200 for r in records)  # answered, not abandoned
