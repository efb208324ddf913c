"""Per-call settings that ride on ``httpx.Request.extensions`` through every transport layer.

Like httpx's own ``timeout`` extension: each layer reads what it needs and passes the request on.
"""

from __future__ import annotations

__all__ = ["CACHE_ENTRY", "CACHE_KEY", "CACHE_RESULT", "CREDENTIAL", "DEADLINE", "FRESHNESS",
           "FRESH_UNTIL", "LANGUAGE", "REFRESH", "RETRIED", "ROUTE", "STALE_AGE", "USAGE"]

DEADLINE = "gateway.deadline"  # clock.monotonic() by which the GraphQL request must answer
LANGUAGE = "gateway.language"  # the request's language: part of the call's identity
FRESHNESS = "gateway.freshness"  # "groups" or "products": which TTL applies
STALE_AGE = "gateway.stale_age"  # on a response: served stale, this many seconds past fresh
CACHE_KEY = "gateway.cache_key"  # (source, credential, key): the cache key, once computed
CACHE_ENTRY = "gateway.cache_entry"  # on a response: (key, stored_at) of the cache entry it is
# On a response: clock.wall() until which the answer is fresh (absent: not fresh past now).
FRESH_UNTIL = "gateway.fresh_until"
# The fingerprint of a client's own credential the call is sent with (absent: the source's
# configured token): part of the cache and dedup keys.
CREDENTIAL = "gateway.credential"
ROUTE = "gateway.route"  # the path's template ("/productGroup/{id}"): metrics and spans name it
USAGE = "gateway.usage"  # the GraphQL request's SourceUsage of the source: layers count into it
# The status classes ("5xx", "none") of the tries the retry layer tried again, in order.
RETRIED = "gateway.retried"
# True: the answer must be read from the source now (the change feed's polls), and stored.
REFRESH = "gateway.refresh"
CACHE_RESULT = "gateway.cache_result"  # "miss" once the cache layer let the request go on
