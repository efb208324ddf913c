"""Compiled execution within its budget: an answer that grows past ``max_bytes`` or past the
request's deadline stops while it is being built (not after), and a long answer gives the event
loop a turn between slices, so that other requests go on; within the budget the answer is the
one graphql-core gives."""

from __future__ import annotations

import asyncio

import strawberry
from graphql import ExecutionResult, execute, parse

from gateway.graph.executor import Budget, execute_plan
from gateway.graph.planner import build_plan
from gateway.graph.strawberry_internals import graphql_schema
from gateway.graph.variables import coerce_variables
from tests.clock import ManualClock
from tests.helpers import codes

SHELVES = 40
BOOKS = 25


@strawberry.type
class Book:
    title: str
    code: strawberry.ID


class Library:
    """What the resolvers did: shelves whose books were asked for, and a clock they move."""

    def __init__(self, clock: ManualClock | None = None, seconds_per_shelf: float = 0.0) -> None:
        self.asked: list[int] = []
        self.clock = clock
        self.seconds_per_shelf = seconds_per_shelf
        self.hanging = asyncio.Event()  # what the slow field waits for (never set)
        self.hung_cancelled = False


@strawberry.type
class Shelf:
    number: int

    @strawberry.field
    async def books(self, info: strawberry.Info) -> list[Book]:
        library: Library = info.context
        library.asked.append(self.number)
        if library.clock is not None:  # building this shelf takes time
            library.clock.advance(library.seconds_per_shelf)
        return [Book(title=f"Book {self.number}-{n} " + "x" * 40, code=strawberry.ID(str(n)))
                for n in range(BOOKS)]


@strawberry.type
class Query:
    @strawberry.field
    async def shelves(self) -> list[Shelf]:
        return [Shelf(number=n) for n in range(SHELVES)]

    @strawberry.field
    async def slow(self, info: strawberry.Info) -> str | None:
        library: Library = info.context
        try:
            await library.hanging.wait()
        except asyncio.CancelledError:
            library.hung_cancelled = True
            raise
        return "never"


SCHEMA = graphql_schema(strawberry.Schema(query=Query))
QUERY = "{ shelves { number books { title code } } }"
# Each shelf's books are a resolver's value ready at once (no await), completed on the spot.


async def run(query: str, library: Library, budget: Budget | None = None) -> ExecutionResult:
    document = parse(query)
    operation = document.definitions[0]
    plan = build_plan(SCHEMA, operation, {}, {})  # type: ignore[arg-type]
    coerced = coerce_variables(SCHEMA, operation, None)  # type: ignore[arg-type]
    assert not isinstance(coerced, list)
    if budget is None:
        return await execute_plan(SCHEMA, plan, coerced, root_value=None, context=library)
    return await execute_plan(SCHEMA, plan, coerced, root_value=None, context=library,
                              budget=budget)


async def test_within_the_budget_the_answer_is_graphql_cores() -> None:
    clock = ManualClock()
    budget = Budget(max_bytes=10_000_000, deadline=clock.now + 10, clock=clock.clock,
                    check_bytes=256)
    compiled = await run(QUERY, Library(), budget)
    standard = await execute(SCHEMA, parse(QUERY), context_value=Library())  # type: ignore[misc]
    assert compiled.errors is None and compiled.data == standard.data
    assert len(compiled.data["shelves"]) == SHELVES  # type: ignore[index]


async def test_an_answer_past_max_bytes_stops_while_it_is_built() -> None:
    whole = sum(len(f'{{"title":"Book {s}-{n} {"x" * 40}","code":"{n}"}},')
                for s in range(SHELVES) for n in range(BOOKS))
    library = Library()
    result = await run(QUERY, library, Budget(max_bytes=whole // 10, check_bytes=1024))
    assert result.data is None and codes(result.formatted) == ["RESPONSE_TOO_LARGE"]
    assert result.errors is not None and result.errors[0].extensions == {
        "code": "RESPONSE_TOO_LARGE", "maxResponseBytes": whole // 10}
    # Stopped once a tenth was built: most shelves' books were never asked for.
    assert 0 < len(library.asked) < SHELVES // 2


async def test_an_answer_past_the_deadline_stops_and_what_it_waits_for_is_cancelled() -> None:
    clock = ManualClock()
    library = Library(clock, seconds_per_shelf=1.0)
    budget = Budget(deadline=clock.now + 5.5, clock=clock.clock, check_bytes=256)
    result = await run("{ slow shelves { number books { title } } }", library, budget)
    assert result.data is None and codes(result.formatted) == ["GATEWAY_TIMEOUT"]
    assert "request_timeout_seconds" in result.errors[0].message  # type: ignore[index]
    assert len(library.asked) < SHELVES  # stopped a few shelves past the deadline
    for _ in range(3):  # the cancellation reaches the resolver at the task's next step
        await asyncio.sleep(0)
    assert library.hung_cancelled  # the field still waiting was cancelled, not left running


async def test_a_long_answer_gives_the_event_loop_turns_between_slices() -> None:
    clock = ManualClock()
    ticks = 0

    async def other_request() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    async def ticks_while(budget: Budget) -> tuple[int, ExecutionResult]:
        nonlocal ticks
        other = asyncio.ensure_future(other_request())
        await asyncio.sleep(0)
        ticks = 0
        result = await run(QUERY, Library(), budget)
        other.cancel()
        return ticks, result

    # Every slice spent at once (no time on the clock): a turn every 64 values.
    sliced, result = await ticks_while(Budget(clock=clock.clock, check_bytes=1024,
                                              slice_seconds=0))
    # A slice's time never spent (the clock stands still): one turn per level at most.
    whole, unsliced = await ticks_while(Budget(clock=clock.clock, check_bytes=1024))
    assert result.data == unsliced.data and not result.errors
    assert whole <= 3 < SHELVES // 2 <= sliced
