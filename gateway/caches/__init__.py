"""Every cache and memo the gateway keeps, on one bounded LRU (:mod:`gateway.caches.bounded`)
or the shared store (:mod:`gateway.caches.store`: memory, or Redis when ``[cache] url`` names
it). They are made by the edge's app (:mod:`gateway.edge.app`, :class:`gateway.edge.runtime.
Runtime`); one table of them, outermost first. Wall-clock times are those of entries shared
between processes.

====================  =============================  ===================  ===================
cache (module)        keyed by                       answers up to        bounded by
====================  =============================  ===================  ===================
response cache        document hash, operation,      the shortest         memory tier: bytes
(caches/responses,    variables, language, client    freshness of the     (``max_bytes``),
edge/caching)                                        upstream answers     LRU; Redis: its own
                                                     used, ≤ max TTL      maxmemory
APQ documents         document SHA-256 (documents,   apq_ttl_seconds      ``[persisted]
(edge/persisted)      not answers: no credential)                         max_bytes``, LRU (in
                                                                          Redis: a script)
document cache        query text (accepted           (parsed text: no     estimated bytes
(graph/documents)     documents only)                age)                 ([limits] document_
                                                                          cache_bytes), LRU
validation verdicts   the document cache's entry     (no age)             its entry; cost
(graph/documents)                                                         prices change: ≤ 4
plan cache            document, operation name,      (no age)             the documents the
(graph/compiled)      directive variables                                 document cache keeps
upstream store        format, source, credential     TTL (groups or       memory: bytes, LRU;
(upstream/cache,      (the client's own when passed  products) + stale    Redis: maxmemory
caches/store)         through), path + sorted        grace on failure
                      query, language
in-flight dedup       the upstream store's key       the call in flight   calls in flight
(upstream/dedup)
decoded JSON, parsed  upstream store entry           that entry's life    bytes, one bound for
records (upstream/                                                        all sources, LRU
client)
group tables          source, language, credential   the freshness of     languages per
(sources/base)                                       the answers read     source
                                                     for them
per-request memos     call, field, group             the request          the request
(scope.RequestScope)
Accept-Language keys  the header's value             (no age)             1,024 values
(edge/caching)
====================  =============================  ===================  ===================
"""
