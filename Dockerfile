# The gateway as a production image: `docker build -t catalogue-gateway .`, then run it with a
# configuration mounted at /etc/gateway/gateway.toml and its tokens in the environment
# (compose.yaml does both). The playground's GraphiQL files are not built: production has
# GraphiQL off.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GATEWAY_CONFIG=/etc/gateway/gateway.toml

WORKDIR /app
COPY pyproject.toml README.md ./
COPY gateway ./gateway
RUN pip install '.[tracing]'

# Never root: a user of its own, without a shell or a home worth the name.
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin gateway
USER gateway

EXPOSE 8000 9464
# /healthz: the process serves HTTP (readiness of the sources is /readyz, for load balancers).
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"]

# SIGTERM (docker stop, Kubernetes) drains, then stops gracefully: give the container at least
# drain_seconds + grace_seconds to stop (compose.yaml: stop_grace_period).
STOPSIGNAL SIGTERM
ENTRYPOINT ["python", "-m", "gateway"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
