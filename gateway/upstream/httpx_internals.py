"""httpx's private names, read in this module alone.

* ``httpx.URL(text)`` parses its text every time (a regular expression, then a quoting pass over
  each component): 15-25 us of CPU, and many short-lived objects, for each upstream call. The
  upstream client's URLs need no parsing: the configured base URL (parsed once), a path an
  adapter makes and a query the client encodes itself. :func:`url_of` puts them into the parsed
  form httpx keeps.
* ``httpx.Response(content=...)`` runs its body through httpx's decoder chain (a chunker, an
  identity decoder, a join) even when the body is not encoded: 12 us of a 14 us response.
  :func:`answer_of` takes a body without ``Content-Encoding`` as the response's content as it is.

``tests/upstream/test_httpx_internals.py`` checks both against httpx's own way, so an httpx
release that changes these internals fails the suite, not a deployment; httpx is pinned below
0.29 (pyproject.toml).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, urlencode

import httpx

__all__ = ["answer_of", "url_of"]

# What a path keeps unquoted besides letters, digits and "-._~" (RFC 3986 pchar, and "/").
PATH_SAFE = "/!$&'()*+,;=:@"


def url_of(base: httpx.URL, path: str, params: Sequence[tuple[str, str]]) -> httpx.URL:
    """``base``'s scheme and authority with ``path`` (absolute: the base's own path included)
    and ``params`` as its query, as ``httpx.URL`` parses ``base`` joined with them."""
    url = httpx.URL.__new__(httpx.URL)
    url._uri_reference = base._uri_reference._replace(
        path=quote(path, safe=PATH_SAFE), query=urlencode(params) or None, fragment=None)
    return url


def answer_of(status: int, headers: list[tuple[bytes, bytes]], body: bytes,
              request: httpx.Request, extensions: dict[str, Any] | None = None
              ) -> httpx.Response:
    """``httpx.Response(status, headers=headers, content=body, request=request,
    extensions=extensions)``, read already: decoded by httpx (``aread``) only where it carries a
    ``Content-Encoding``."""
    response = httpx.Response(status, headers=headers, stream=httpx.ByteStream(body),
                              request=request, extensions=extensions)
    if "content-encoding" not in response.headers:
        response._content = body  # what read() would make of it
    return response
