"""One admission for every way in: the steps an operation takes before it runs, whether it comes
as an HTTP request (answered as JSON or as Server-Sent Events) or as a WebSocket's ``subscribe``
message, and the steps each event of a subscription takes before it is resolved. The transports
(:mod:`gateway.edge.endpoint`, :mod:`gateway.edge.websocket`) read their requests and render
refusals; what is refused, and in which order, is decided here only.

Per client (an HTTP request; a WebSocket at ``connection_init``), :meth:`Admission.identify`:

1. an address that failed to authenticate too often this minute: 429 ``RATE_LIMITED``;
2. the credentials (:mod:`gateway.access.auth`): 401 ``UNAUTHENTICATED``.

Per operation, :meth:`Admission.read` then :meth:`Admission.operation` (the whole-response cache
may answer between the two: it keys a request by what ``read`` returns):

3. the client's request rate: 429 ``RATE_LIMITED``;
4. the parameters well-formed (400 ``BAD_USER_INPUT``), ``variables`` within the document limits
   (``DOCUMENT_LIMIT_EXCEEDED``), the persisted operation read (:mod:`gateway.edge.persisted`);
5. the persisted operation's text looked up; the document parsed in its turn (the document
   limits), one operation to run, of a type the transport runs, the document valid
   (:class:`~gateway.graph.documents.DocumentCache`: the schema, the cost rule and the
   answer's size);
6. the client's cost budget, on the operation's estimated upstream requests: 429
   ``COST_BUDGET_EXCEEDED``.

Per event of a subscription, :meth:`Admission.event` (a subscription is a standing request):

7. the client's credentials still hold (its token not expired, its key still configured), else
   the subscription ends with ``UNAUTHENTICATED``;
8. the event's estimated upstream requests within what is left of the cost budget, else it ends
   with ``COST_BUDGET_EXCEEDED`` and ``retryAfter`` (a stream carries no ``Retry-After``).

A refusal is a :class:`RequestError` (with its HTTP status), a
:class:`~gateway.edge.persisted.PersistedError`, a ``GraphQLError`` or a :class:`DocumentRefused`
(request errors of the document: no ``data``), or for an event
:class:`~gateway.errors.SubscriptionEnded`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
)
from strawberry import Schema

from gateway.access.auth import API_KEY_HEADER, Authenticator, Client, Unauthenticated
from gateway.access.rate_limits import CostEstimate, RateLimited, RateLimits
from gateway.clock import Clock
from gateway.edge.persisted import Persisted, PersistedOperations
from gateway.errors import ErrorCode, SubscriptionEnded
from gateway.graph.documents import DocumentCache
from gateway.graph.limits import check_variables
from gateway.graph.strawberry_internals import graphql_schema

__all__ = ["CREDENTIAL_HEADERS", "MAX_OPERATION_NAME", "Admission", "DocumentRefused",
           "Operation", "RequestError", "checked", "operation_label", "operation_type"]

MAX_OPERATION_NAME = 256  # characters of `operationName` (a GraphQL name; ours are far shorter)
CREDENTIAL_HEADERS = (API_KEY_HEADER, "authorization")  # what a client authenticates with


class RequestError(Exception):
    """A request refused before GraphQL sees it: a status, a code and a message."""

    def __init__(self, status: int, message: str, *, code: ErrorCode = ErrorCode.BAD_USER_INPUT,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = dict(headers or {})


class DocumentRefused(Exception):
    """The document failed validation (or a request check): ``errors`` say why; ``label``
    names its operation, as :func:`operation_label` does."""

    def __init__(self, errors: list[GraphQLError], label: str) -> None:
        super().__init__(errors[0].message)
        self.errors = errors
        self.label = label


@dataclass(slots=True)
class Operation:
    """An admitted operation: its document, its type and name, and its estimated upstream
    requests (:meth:`estimate`: priced once, when first asked)."""

    document: DocumentNode
    kind: OperationType
    name: str | None
    pricing: CostEstimate
    price: int | None = None

    def estimate(self) -> int:
        if self.price is None:
            self.price = self.pricing(self.document, self.name)
        return self.price


class Admission:
    """The steps of the module's docstring, over the gateway's access control, persisted
    operations, documents and cost model."""

    def __init__(self, *, auth: Authenticator, rate_limits: RateLimits,
                 persisted: PersistedOperations, documents: DocumentCache,
                 schema: Schema, estimate_cost: CostEstimate, clock: Clock) -> None:
        self.auth = auth
        self.rate_limits = rate_limits
        self.persisted = persisted
        self.documents = documents
        self.strawberry_schema = schema
        self.schema: GraphQLSchema = graphql_schema(schema)
        self.estimate_cost = estimate_cost
        self.clock = clock
        self._successor: Admission | None = None  # after a reload: the new configuration's

    def hand_over(self, successor: Admission) -> None:
        """A reload replaced this admission: the streams it admitted meet the new one's
        credentials and limits at their next event (a key removed ends them)."""
        self._successor = successor

    def _latest(self) -> Admission:
        admission = self
        while admission._successor is not None:
            admission = admission._successor
        return admission

    async def identify(self, headers: Mapping[str, str], *, address: str) -> Client:
        """Steps 1 and 2: the client, or :class:`RequestError` (429, 401). Only credentials
        that fail count against the address (a request without any guesses nothing)."""
        try:
            if self.auth.enabled:
                await self.rate_limits.admit_attempt(address)
            return await self.auth.authenticate(headers, address=address)
        except RateLimited as exc:
            raise too_many(exc) from None
        except Unauthenticated as exc:
            if any(name in headers for name in CREDENTIAL_HEADERS):
                await self.rate_limits.failed(address)
            raise RequestError(401, exc.message, code=ErrorCode.UNAUTHENTICATED,
                               headers={"WWW-Authenticate": exc.challenge}) from None

    async def read(self, client: Client, params: dict[str, Any]) -> Persisted:
        """Steps 3 and 4: what ``params`` ask to run (its document's hash, its text when
        sent). Raises :class:`RequestError`, ``GraphQLError`` or ``PersistedError``."""
        try:
            await self.rate_limits.admit(client)
        except RateLimited as exc:
            raise too_many(exc) from None
        checked(params)
        check_variables(params.get("variables"), self.documents.limits)
        return self.persisted.read(params)

    async def operation(self, client: Client, params: dict[str, Any], persisted: Persisted,
                        *, runs: Callable[[OperationType | None], None]) -> Operation:
        """Steps 5 and 6: the operation to run (``params["query"]`` is then its text);
        ``runs(kind)`` raises the transport's refusal of an operation type it does not run.
        Raises :class:`RequestError`, ``GraphQLError`` or ``PersistedError``."""
        params["query"] = await self.persisted.lookup(persisted)
        name = params.get("operationName")
        document = await self.documents.admit(params["query"], self.schema)
        problem = operation_problem(document, name)
        if problem is not None:
            raise GraphQLError(problem, extensions={
                "code": ErrorCode.GRAPHQL_VALIDATION_FAILED.value})
        kind = operation_type(document, name)
        runs(kind)  # before validation: a mutation over GET is 405 whatever else it is
        assert kind is not None  # one operation to run (operation_problem)
        errors = self.documents.refusal(self.schema, document, name, params.get("variables"))
        if errors:
            if self.strawberry_schema.config.disable_field_suggestions:
                for error in errors:  # as strawberry does to the errors it reports
                    self.strawberry_schema.remove_field_suggestion(error)
            raise DocumentRefused(errors, operation_label(document, name))
        operation = Operation(document, kind, name, self.estimate_cost)
        try:
            # Priced only where the client has a cost budget: pricing walks the document.
            await self.rate_limits.admit_cost(client, operation.estimate)
        except RateLimited as exc:
            raise too_many(exc) from None
        return operation

    async def event(self, client: Client, operation: Operation) -> None:
        """Steps 7 and 8, before an event of ``operation`` is resolved: raises
        :class:`~gateway.errors.SubscriptionEnded` when the subscription must end."""
        latest = self._latest()
        invalid = latest.auth.still_valid(client, self.clock.wall())
        if invalid is not None:
            raise SubscriptionEnded(f"{invalid}: subscribe again with valid credentials",
                                    ErrorCode.UNAUTHENTICATED)
        try:
            await latest.rate_limits.admit_cost(client, operation.estimate)
        except RateLimited as exc:
            raise SubscriptionEnded(f"{exc.message}; subscribe again after the window, with "
                                    "`after` the last event id received: nothing is missed",
                                    exc.code, retry_after=exc.retry_after) from None

    async def charge(self, client: Client, calls: int) -> None:
        """Charge the upstream calls an operation (or an event) made."""
        await self._latest().rate_limits.charge(client, calls)

    async def register(self, client: Client, persisted: Persisted) -> None:
        """Keep an APQ document, counted against the client's request budget (a client past
        it got its answer, but nothing is kept)."""
        cost = self.persisted.registration_cost(persisted)
        if cost and await self.rate_limits.take(client, cost):
            await self.persisted.register(persisted)


def too_many(exc: RateLimited) -> RequestError:
    return RequestError(429, exc.message, code=exc.code,
                        headers={"Retry-After": str(exc.retry_after)})


def checked(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` as the GraphQL-over-HTTP spec wants them: ``query`` a non-empty string (or
    absent, for a hash-only persisted query), ``operationName`` a string of at most
    :data:`MAX_OPERATION_NAME` characters or null, ``variables`` and ``extensions`` maps or
    null; :class:`RequestError` (400) otherwise."""
    query = params.get("query")
    extensions = params.get("extensions")
    persisted = isinstance(extensions, dict) and "persistedQuery" in extensions
    if not (persisted and query is None) and (not isinstance(query, str) or not query.strip()):
        raise RequestError(400, "`query` must be a non-empty string")
    name = params.get("operationName")
    if name is not None and not isinstance(name, str):
        raise RequestError(400, "`operationName` must be a string or null")
    if name is not None and len(name) > MAX_OPERATION_NAME:
        raise RequestError(400, f"`operationName` must be at most {MAX_OPERATION_NAME} "
                                f"characters long (it has {len(name)})")
    for key in ("variables", "extensions"):
        if params.get(key) is not None and not isinstance(params[key], dict):
            raise RequestError(400, f"`{key}` must be a map (a JSON object) or null")
    return params


def _operations(document: DocumentNode) -> list[OperationDefinitionNode]:
    return [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]


def operation_problem(document: DocumentNode, operation_name: str | None) -> str | None:
    """Why no single operation can run (GraphQL spec, GetOperation), or None."""
    names = [d.name.value if d.name else None for d in _operations(document)]
    if operation_name is None:
        if len(names) > 1:
            return "the document has several operations: say which in `operationName`"
        return None
    if operation_name not in names:
        return f"the document has no operation named {operation_name!r}"
    return None


def operation_label(document: DocumentNode, operation_name: str | None) -> str:
    """The operation's name for the access log and metrics: a name the document defines (the
    one asked for, or its only operation's), else "-" (a client's word alone labels nothing)."""
    operations = _operations(document)
    if operation_name is not None:
        named = any(o.name is not None and o.name.value == operation_name for o in operations)
        return operation_name if named else "-"
    if len(operations) != 1:
        return "-"
    name = operations[0].name
    return name.value if name is not None else "(anonymous)"


def operation_type(document: DocumentNode, operation_name: str | None) -> OperationType | None:
    """The type of the operation that runs; None when none can (see :func:`operation_problem`)."""
    operations = _operations(document)
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    return operations[0].operation if len(operations) == 1 else None
