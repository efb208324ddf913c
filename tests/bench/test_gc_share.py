"""The garbage collector's share (bench/gc_share.py): its clock, and one short run end to end.

The run is ``python -m bench.gc_share`` in a process of its own, as ``bench/run.py`` starts it
(it freezes its heap and retunes the collector: not something to do to the test process), over
the session's emulators, with the config of the benchmark's uncached row.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path

from bench.gc_share import GcClock, GcShare, share_of
from bench.report import gc_markdown
from bench.run import ROOT
from bench.scenarios import gateway_config, prepare
from tests.conftest import RunningEmulator, RunningGateway


def test_the_clock_times_collections_by_generation() -> None:
    with GcClock() as clock:
        gc.collect()
        gc.collect(0)
    assert clock not in gc.callbacks
    assert clock.counts[2] >= 1 and clock.counts[0] >= 1
    assert clock.seconds > 0
    share = share_of("main", 100, 0.5, clock)
    assert share.cpu_ms == 500 and share.cpu_ms_per_query == 5
    assert share.gc_ms == 1000 * clock.seconds
    assert share.share == share.gc_ms / 500
    assert GcShare.from_json(json.loads(json.dumps(share.__dict__))) == share


def test_the_markdown_gives_share_and_ms_per_query() -> None:
    text = gc_markdown([GcShare("nodes", 200, 1000.0, 80.0, (40, 2, 0))], 4, 32)
    assert "| nodes | 200 | 5.00 | 0.400 | 8.0% | 0.200 / 0.010 / 0.000 |" in text


def test_a_short_run_over_every_scenario(emulator_servers: dict[str, RunningEmulator],
                                         gateway_server: RunningGateway,
                                         tmp_path: Path) -> None:
    config = tmp_path / "gw-uncached.toml"
    config.write_text(gateway_config({k: e.url for k, e in emulator_servers.items()},
                                     {k: e.token for k, e in emulator_servers.items()},
                                     cached=False))
    scenarios = tmp_path / "scenarios.json"
    scenarios.write_text(json.dumps([vars(s) for s in prepare(f"{gateway_server.url}/graphql")]))
    done = subprocess.run(
        [sys.executable, "-m", "bench.gc_share", "--config", str(config), "--scenarios",
         str(scenarios), "--seconds", "0.1", "--warmup", "0.05", "--connections", "4"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    shares = [GcShare.from_json(json.loads(line)) for line in done.stdout.splitlines()]
    assert [s.scenario for s in shares] == ["main", "merged", "nodes"]
    for share in shares:
        assert share.queries > 0 and share.cpu_ms > 0
        assert 0 <= share.gc_ms < share.cpu_ms
