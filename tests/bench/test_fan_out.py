"""The fan-out table's arithmetic (bench/report.py): CPU per upstream call and per KB of answer."""

from __future__ import annotations

import argparse

import pytest

from bench.model import ROWS, Bench, Sample
from bench.report import fan_out, fan_out_line, fan_out_tables, figure, median_text
from bench.scenarios import SCENARIOS

ROW = {row.key: row for row in ROWS}


def sample(cpu_ms: float, calls: float, upstream_bytes: float, sent: int = 1000) -> Sample:
    return Sample(rps=100.0, cpu_ms=cpu_ms, p50_ms=1.0, p99_ms=2.0, calls=calls, wrk_cpu=0.1,
                  sent=sent, upstream_bytes=upstream_bytes)


def test_the_ratios_are_cpu_over_the_calls_and_the_bytes() -> None:
    figures = fan_out(sample(cpu_ms=6.4, calls=16.0, upstream_bytes=32_000.0))
    assert figures is not None
    assert figures.cpu_per_call == pytest.approx(0.4)
    assert figures.cpu_per_kb == pytest.approx(0.2)  # 6.4 ms over 32 KB


def test_requests_cut_off_at_the_end_cancel_out() -> None:
    """Per request sent, calls and CPU both read low by the same requests: the ratio stays."""
    whole = fan_out(sample(cpu_ms=2.0, calls=1.0, upstream_bytes=100_000.0))
    cut = fan_out(sample(cpu_ms=2.0 * 0.98, calls=0.98, upstream_bytes=98_000.0))
    assert whole is not None and cut is not None
    assert cut.cpu_per_call == pytest.approx(whole.cpu_per_call)
    assert cut.cpu_per_kb == pytest.approx(whole.cpu_per_kb)


def test_no_call_no_figure() -> None:
    assert fan_out(sample(cpu_ms=0.5, calls=0.0, upstream_bytes=0.0)) is None
    empty = fan_out(sample(cpu_ms=0.5, calls=1.0, upstream_bytes=0.0))
    assert empty is not None and empty.cpu_per_kb is None


@pytest.mark.parametrize(("value", "text"), [
    (0.0, "0"), (0.012345, "0.0123"), (1.2345, "1.23"), (12.345, "12.3"), (123.45, "123"),
    (1234.5, "1,234"),
])
def test_three_significant_figures(value: float, text: str) -> None:
    assert figure(value) == text


def test_median_text_flags_a_wide_spread() -> None:
    assert median_text([1.0, 1.05, 1.1]) == "1.05 ±5%"
    assert median_text([1.0, 1.5, 2.0]) == "1.50 ±33% ⚠"


def bench() -> Bench:
    made = Bench(argparse.Namespace(latencies=[0, 20]), None, None)
    made.exact_calls[("nodes", 0, "uncached")] = 16.0
    made.exact_bytes[("nodes", 0, "uncached")] = 45_600.0
    return made


def test_a_line_per_row_that_calls_an_upstream() -> None:
    runs = [sample(6.4, 16.0, 32_000.0), sample(6.0, 16.0, 30_000.0),
            sample(6.8, 16.0, 34_000.0)]
    line = fan_out_line(bench(), ("nodes", 0, "uncached"), ROW["uncached"], runs)
    assert line == ("| 0 ms | gateway, upstream caches off | 6.40 ±6% | 16.00 | 45.6 | "
                    "0.400 ±6% | 0.200 ±0% |")


def test_references_show_dashes_and_warm_rows_are_left_out() -> None:
    made = bench()
    stock = fan_out_line(made, ("nodes", None, "stock"), ROW["stock"], [sample(1.0, 0, 0)])
    assert stock == "| - | stock Strawberry, data in memory | 1.00 ±0% | - | - | - | - |"
    warm = fan_out_line(made, ("nodes", 0, "warm"), ROW["warm"], [sample(1.0, 0, 0)])
    assert warm is None


def test_one_table_per_scenario() -> None:
    made = bench()
    nodes = next(s for s in SCENARIOS if s.name == "nodes")
    samples = {("nodes", None, "stock"): [sample(1.0, 0, 0)],
               ("nodes", 0, "uncached"): [sample(6.4, 16.0, 32_000.0)],
               ("nodes", 0, "warm"): [sample(0.9, 0.0, 0.0)]}
    text = fan_out_tables(made, [nodes], samples)
    lines = text.splitlines()
    assert lines[0].startswith("**nodes**")
    assert "CPU ms / upstream call" in lines[2]
    assert [line.split(" | ")[1] for line in lines[4:]] == [
        "stock Strawberry, data in memory", "gateway, upstream caches off"]
