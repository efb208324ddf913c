"""How a request is read: media-type negotiation. (The whole of it over HTTP:
tests/edge/test_graphql_over_http.py.)"""

from __future__ import annotations

import pytest

from gateway.edge.admission import RequestError
from gateway.edge.request import GRAPHQL_RESPONSE, JSON, negotiate
from gateway.edge.sse import EVENT_STREAM
from gateway.errors import ErrorCode


@pytest.mark.parametrize(("accept", "chosen"), [
    ("", JSON),
    ("   ", JSON),
    ("*/*", JSON),
    ("application/*", JSON),
    ("application/json", JSON),
    (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE),
    (f"application/json, {GRAPHQL_RESPONSE}", GRAPHQL_RESPONSE),  # the explicit one wins a tie
    (f"application/json;q=1, {GRAPHQL_RESPONSE};q=0.5", JSON),
    (f"{GRAPHQL_RESPONSE};q=0, application/json", JSON),
    ("text/html, */*;q=0.8", JSON),
    ("APPLICATION/JSON", JSON),
    (f"{GRAPHQL_RESPONSE};q=bogus, application/json;q=0.1", JSON),
    ("text/event-stream", EVENT_STREAM),  # GraphQL over SSE
    (f"application/json, {EVENT_STREAM}", EVENT_STREAM),  # named: it wins a tie
    (f"{EVENT_STREAM};q=0.5, application/json", JSON),
])
def test_negotiate_picks_the_media_type(accept: str, chosen: str) -> None:
    assert negotiate(accept) == chosen


@pytest.mark.parametrize("accept", ["text/html", "application/xml", "application/json;q=0"])
def test_negotiate_refuses_what_it_cannot_answer(accept: str) -> None:
    with pytest.raises(RequestError) as refused:
        negotiate(accept)
    assert (refused.value.status, refused.value.code) == (406, ErrorCode.NOT_ACCEPTABLE)
