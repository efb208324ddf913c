"""``make bench``: the gateway against its references under wrk (see bench/README.md)."""
