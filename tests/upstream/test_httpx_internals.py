"""What the upstream client builds past httpx's public constructors equals what they build
(gateway/upstream/httpx_internals.py): its URLs httpx's parse of the same URL, its responses
httpx's response of the same answer. An httpx release that changes its internals fails here."""

from __future__ import annotations

import gzip

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.upstream.httpx_internals import answer_of, url_of

BASES = ["http://127.0.0.1:8000", "http://127.0.0.1:8000/", "https://api.example.com/open-api/api",
         "https://user@shop.example:8443/v1/", "http://[::1]:9000/prefix"]
PATHS = ["/product-groups", "productGroup/63b6d4e6cd761a525fbe9cb9", "/a b/č", "/x;y=1/@:~"]
PARAMS: list[list[tuple[str, str]]] = [
    [], [("page", "1"), ("limit", "50")], [("search", "a b&c=d")], [("q", "č%+/?#")],
    [("empty", "")], [("name", "Polarizační brýle"), ("sort_field", "name")]]


def parsed(base: str, path: str, params: list[tuple[str, str]]) -> httpx.URL:
    """What the client built before: httpx's parse of the joined URL."""
    return httpx.URL(f"{str(httpx.URL(base)).rstrip('/')}/{path.lstrip('/')}", params=params)


def built(base: str, path: str, params: list[tuple[str, str]]) -> httpx.URL:
    base_url = httpx.AsyncClient(base_url=base).base_url  # as the client holds it: ends with /
    return url_of(base_url, base_url.path + path.lstrip("/"), params)


def same(a: httpx.URL, b: httpx.URL) -> None:
    assert str(a) == str(b)
    assert (a.scheme, a.host, a.port, a.path, a.raw_path, a.query, a.params) == (
        b.scheme, b.host, b.port, b.path, b.raw_path, b.query, b.params)
    assert a == b and hash(a) == hash(b)


@pytest.mark.parametrize("base", BASES)
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("params", PARAMS)
def test_a_built_url_is_httpxs_parse(base: str, path: str, params: list[tuple[str, str]]) -> None:
    same(built(base, path, params), parsed(base, path, params))


@settings(max_examples=200, deadline=None)
@given(values=st.dictionaries(st.text(max_size=8), st.text(max_size=12), max_size=4))
def test_any_query_is_encoded_as_httpx_encodes_it(values: dict[str, str]) -> None:
    params = sorted(values.items())  # as the client sends them: one value a name, sorted
    same(built(BASES[2], "/products", params), parsed(BASES[2], "/products", params))


@pytest.mark.parametrize("encoding", [None, "gzip"])
async def test_an_answer_made_without_httpxs_decoders_is_httpxs_response(
        encoding: str | None) -> None:
    body = b'{"entries": [{"id": 1, "name": "\xc4\x8cern\xc3\xa1"}]}'
    sent = gzip.compress(body) if encoding else body
    headers = [(b"Content-Type", b"application/json"), (b"Content-Length", b"%d" % len(sent))]
    headers += [(b"Content-Encoding", encoding.encode())] if encoding else []
    request = httpx.Request("GET", "http://upstream/products")
    made = answer_of(200, headers, sent, request, {"http_version": b"HTTP/1.1"})
    httpxs = httpx.Response(200, headers=headers, content=sent, request=request,
                            extensions={"http_version": b"HTTP/1.1"})
    assert await made.aread() == httpxs.content == body
    assert (made.status_code, made.headers.raw, made.extensions, made.request) == (
        httpxs.status_code, httpxs.headers.raw, httpxs.extensions, httpxs.request)
    assert made.json() == httpxs.json() and made.text == httpxs.text
