"""The GraphQL context of a request, or of a subscription over either transport (SSE or
WebSocket): what the edge gives the graph.

A request's :class:`~gateway.scope.RequestScope` comes from its headers: its ``Accept-Language``
(:mod:`gateway.languages`), its deadline (``[server] request_timeout_seconds``), its budgets
(``[limits] max_upstream_requests``, ``max_response_bytes``) and, for each source configured with
a ``pass_through_header``, the client's own upstream credential (:mod:`gateway.credentials`). A
header it cannot use is 400 ``BAD_USER_INPUT`` (a credential is never echoed).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from gateway.access.auth import Client
from gateway.changes.feed import ChangeFeed
from gateway.credentials import Credential
from gateway.edge.admission import Admission, Operation, RequestError
from gateway.edge.runtime import Runtime
from gateway.errors import BadUserInput
from gateway.graph.context import GatewayContext, SubscriptionContext
from gateway.scope import RequestScope

__all__ = ["Contexts"]


class Contexts:
    """Makes the scopes and GraphQL contexts of requests and subscriptions."""

    def __init__(self, runtime: Runtime, *, admission: Admission,
                 changes: ChangeFeed | None = None) -> None:
        self.runtime = runtime
        self.admission = admission
        self.changes = changes
        self.timeout = runtime.config.server.request_timeout_seconds
        self.limits = runtime.config.limits
        # Sources whose client may send its own credential: (source, header).
        self.pass_through = [(s.name, s.pass_through_header.lower())
                             for s in runtime.config.sources if s.pass_through_header]

    def credentials(self, headers: Mapping[str, str]) -> dict[str, Credential]:
        """The client's own upstream credentials, by source (400 for one it cannot use)."""
        found: dict[str, Credential] = {}
        for source, header in self.pass_through:
            token = headers.get(header)
            if token is None:
                continue
            token = token.strip()
            if not Credential.acceptable(token):  # never echoed: it is a credential
                raise RequestError(400, f"the header {header} must be a token: at most 4096 "
                                        "visible ASCII characters")
            found[source] = Credential.of(token)
        return found

    def scope(self, headers: Mapping[str, str], request_id: str,
              credentials: Mapping[str, Credential] | None = None) -> RequestScope:
        """A request's scope: 400 for an ``Accept-Language`` or credential it cannot use."""
        clock = self.runtime.clock
        scope = RequestScope(
            language=headers.get("accept-language"),
            request_id=request_id,
            deadline=clock.monotonic() + self.timeout,
            clock=clock,
            max_response_bytes=self.limits.max_response_bytes,
            upstream_budget=self.limits.max_upstream_requests,
        )
        try:
            scope.language_ranges  # noqa: B018  # read (and checked) once, before any work
        except BadUserInput as exc:
            raise RequestError(400, exc.message) from None
        scope.credentials.update(self.credentials(headers) if credentials is None
                                 else credentials)
        return scope

    def request(self, headers: Mapping[str, str], request_id: str,
                credentials: Mapping[str, Credential] | None = None) -> GatewayContext:
        return GatewayContext(adapters=self.runtime.adapters,
                              scope=self.scope(headers, request_id, credentials),
                              cursors=self.runtime.cursors, changes=self.changes)

    def subscription(self, headers: Mapping[str, str], request_id: str, client: Client,
                     operation: Operation, *, last_event_id: str | None = None
                     ) -> SubscriptionContext:
        """The context of a subscription over either transport: a standing request. Each
        event it emits is admitted for the client first (:meth:`Admission.event`), gets a new
        scope like the first (``headers``' language and pass-through credentials), and the
        client is charged what resolving it cost."""
        runtime = self.runtime
        return SubscriptionContext(
            adapters=runtime.adapters, scope=self.scope(headers, request_id),
            cursors=runtime.cursors, changes=self.changes,
            new_scope=functools.partial(self.scope, headers, request_id),
            admit=functools.partial(self.admission.event, client, operation),
            charge=functools.partial(self.admission.charge, client),
            owner=client.rate_key, ends_at=client.expires_at, clock=runtime.clock,
            last_event_id=last_event_id)
