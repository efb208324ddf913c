"""``[limits]``: what one GraphQL request may cost."""

from __future__ import annotations

from pydantic import Field

from gateway.config.base import Strict

__all__ = ["LimitSettings"]


class LimitSettings(Strict):
    """``[limits]``: what one GraphQL request may cost (docs/query-safety.md).

    Document limits are checked where the query is parsed, before validation; the cost before
    execution; the budgets while executing. The defaults pass every published, documented and test
    query with room to spare and refuse the attacks of issue 11.
    """

    # The document, before validation (gateway/graph/limits.py).
    max_tokens: int = Field(default=2000, ge=100)  # lexical tokens; comments count apart, as many
    max_depth: int = Field(default=15, ge=2)  # nested fields, through fragments (GraphiQL: 15)
    max_aliases: int = Field(default=30, ge=0)  # aliases in an operation, fragments expanded
    max_root_fields: int = Field(default=30, ge=1)  # fields of an operation's root selection
    max_directives: int = Field(default=30, ge=0)  # directive uses in the document
    max_variables: int = Field(default=30, ge=1)  # variable definitions; entries of `variables`
    max_variable_values: int = Field(default=1000, ge=1)  # JSON values in `variables`, nested
    # graphql-core's budget for comparing fields that share a response name (its quadratic
    # part); the suite's queries use at most 10, graphql-core's own default 500,000 is ~1 s.
    max_validation_work: int = Field(default=5000, ge=100)
    # The cost: upstream requests the query may make at most (gateway/graph/cost.py).
    max_cost: int = Field(default=1000, ge=1)
    # The answer's size, priced with the cost: values it may hold (every field of every object
    # and every item of every list, through aliases and fragments; a connection's page at its
    # size, a list of records at its @listSize).
    max_response_values: int = Field(default=200_000, ge=100)
    # Runtime backstops: upstream requests one GraphQL request may make, and its answer's size.
    max_upstream_requests: int = Field(default=1000, ge=1)
    max_response_bytes: int = Field(default=10_000_000, ge=1024)
    # Parsed documents kept (with their validation and plans), by estimated memory.
    document_cache_bytes: int = Field(default=32_000_000, ge=0)
