"""What the gateway says of itself: log lines (:mod:`gateway.observability.logs`), Prometheus
metrics (:mod:`gateway.observability.metrics`) and OpenTelemetry spans
(:mod:`gateway.observability.tracing`). Per request they are written by the edge's middleware
(:mod:`gateway.edge.observe`); per upstream call by the transport stack
(:mod:`gateway.upstream.observe`)."""
