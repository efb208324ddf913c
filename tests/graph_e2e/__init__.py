"""End-to-end GraphQL tests: the gateway over real sockets in front of the running emulators."""
