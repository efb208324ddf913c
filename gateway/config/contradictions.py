"""Settings that contradict each other: no error, but warnings (the command line prints each as
a ``warning:`` line)."""

from __future__ import annotations

from gateway.config.model import Config
from gateway.config.toml_errors import entry_label

__all__ = ["config_warnings"]


def config_warnings(config: Config) -> list[str]:
    """Settings that contradict each other: not an error, but one of the two does not do what
    it says. In the messages' location style; empty when there is none."""
    server, warnings = config.server, []
    if server.graphiql and not server.introspection:
        warnings.append("[server] graphiql = true with introspection = false: GraphiQL cannot "
                        "load the schema (no documentation, no completion): set introspection "
                        "= true too, or graphiql = false")
    if server.field_suggestions and not server.introspection:
        warnings.append("[server] field_suggestions = true with introspection = false: \"Did "
                        "you mean …?\" tells a client the field names introspection hides: set "
                        "field_suggestions = false")
    if server.federation and config.persisted.mode == "trusted":
        warnings.append("[server] federation = true with [persisted] mode = \"trusted\": the "
                        "router's queries (_service, _entities) are made at run time, are "
                        "registered nowhere, and are refused")
    previous = {secret.get_secret_value() for secret in server.previous_cursor_secrets}
    if server.cursor_secret is not None and server.cursor_secret.get_secret_value() in previous:
        warnings.append("[server] previous_cursor_secrets holds the cursor secret itself: "
                        "drop it from the list")
    if (config.persisted.operation_dirs or config.persisted.manifests) and \
            config.persisted.mode != "trusted":
        warnings.append(f"[persisted] operation_dirs and manifests with mode = "
                        f"\"{config.persisted.mode}\": only mode = \"trusted\" reads them")
    if config.response_cache.public and config.auth.required:
        warnings.append("[response_cache] public = true with [auth] required = true: every "
                        "answer is an authenticated client's, so private: public does nothing")
    if config.metrics.port is not None and not config.metrics.enabled:
        warnings.append(f"[metrics] port = {config.metrics.port} with enabled = false: nothing "
                        "is served on it")
    if config.tracing.endpoint is not None and config.tracing.exporter == "console":
        warnings.append("[tracing] endpoint with exporter = \"console\": spans go to stdout, "
                        "the endpoint is not used")
    deadline = server.request_timeout_seconds
    late = [(i, s) for i, s in enumerate(config.sources) if s.timeout_seconds >= deadline]
    if late and config.defaults.timeout_seconds >= deadline:
        warnings.append(_too_slow("[defaults]", config.defaults.timeout_seconds, deadline))
        late = [(i, s) for i, s in late if s.timeout_seconds != config.defaults.timeout_seconds]
    warnings += [_too_slow(entry_label("sources", i + 1, s.name), s.timeout_seconds, deadline)
                 for i, s in late]
    return warnings


def _too_slow(where: str, timeout: float, deadline: float) -> str:
    return (f"{where} timeout_seconds = {timeout:g} with [server] request_timeout_seconds = "
            f"{deadline:g}: the request's deadline ends a slow try first, so it is never "
            "retried: make timeout_seconds shorter")
