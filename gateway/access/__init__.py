"""Access control: who the client is (:mod:`gateway.access.auth`: API keys, JWT with a secret,
a PEM key or a key set) and how much it may ask (:mod:`gateway.access.rate_limits`: requests,
upstream cost and failed authentications per minute, in memory or Redis). The edge's admission
(:mod:`gateway.edge.admission`) decides in which order they are asked."""
