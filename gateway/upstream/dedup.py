"""In-flight de-duplication: concurrent identical upstream requests in one process become one.

Requests are identical when their credential, path with query, and language are (the upstream
client sends a call's parameters sorted, so one call has one path). The first caller's request
goes on, and its answer is the first caller's own response; the others wait for it and get a
copy. Each waiter keeps
its own deadline: a waiter whose deadline passes, or whose request is cancelled (its client
left), gives up; the shared call goes on while another waiter remains and is cancelled with the
last one (:class:`~gateway.shared.SharedTasks`).
"""

from __future__ import annotations

import httpx

from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.observability.metrics import SourceMetrics
from gateway.scope import SourceUsage
from gateway.shared import SharedTasks
from gateway.upstream.extensions import CREDENTIAL, DEADLINE, LANGUAGE, USAGE
from gateway.upstream.headers import decoded_body_headers
from gateway.upstream.httpx_internals import answer_of
from gateway.upstream.layer import Layer

__all__ = ["DedupTransport"]

# What makes two requests one: credential, path with query, language.
InflightKey = tuple[str, bytes, str | None]


class DedupTransport(Layer):
    def __init__(self, inner: httpx.AsyncBaseTransport, *, source: str, credential: str,
                 clock: Clock = SYSTEM_CLOCK, metrics: SourceMetrics | None = None) -> None:
        super().__init__(inner)
        self.metrics = metrics
        self.source = source
        self.credential = credential
        self.clock = clock
        self._inflight: SharedTasks[InflightKey, httpx.Response] = SharedTasks()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method != "GET":
            return await self.inner.handle_async_request(request)
        extensions = request.extensions
        key = (extensions.get(CREDENTIAL) or self.credential, request.url.raw_path,
               extensions.get(LANGUAGE))
        deadline = extensions.get(DEADLINE)
        timeout = (max(0.0, deadline - self.clock.monotonic()) if isinstance(deadline, float)
                   else None)
        joined = key in self._inflight
        if joined:
            self._joined(request)
        try:
            response = await self._inflight.run(key, lambda: self._fetch(request),
                                                timeout=timeout)
        except TimeoutError:
            raise httpx.ReadTimeout("deadline passed while waiting for a shared call",
                                    request=request) from None
        if not joined:
            return response  # the caller whose request it is: no copy
        return answer_of(response.status_code, decoded_body_headers(response.headers),
                         response.content, request, dict(response.extensions))

    def _joined(self, request: httpx.Request) -> None:
        usage: SourceUsage | None = request.extensions.get(USAGE)
        if usage is not None:
            usage.shared += 1
        if self.metrics is not None:
            self.metrics.dedup_join.inc()

    async def _fetch(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        await response.aread()  # whole before it is shared
        return response
