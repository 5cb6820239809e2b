"""Trace statistics (against the fact sheet's oracles), ideal hit rates, synth and the trace CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sglang_test_framework.cli import main
from sglang_test_framework.load.trace_tools import ideal_hit_rate, rate_stats, synthesize, trace_stats, write_trace
from sglang_test_framework.traces import TraceRow, read_trace
from tests.conftest import shared_traces_dir

TRACES = shared_traces_dir()
MOONCAKE = TRACES / "mooncake" / "conversation_trace.jsonl"
AZURE = TRACES / "azure_llm_2023" / "AzureLLMInferenceTrace_conv.csv"


def _row(ids: list[int], n: int, t_ns: int = 0) -> TraceRow:
    return TraceRow(t_ns, n, 1, tuple(ids))


def test_hit_rate_by_hand() -> None:
    rows = [_row([0, 1], 8), _row([0, 2], 8), _row([0, 1, 3], 10), _row([4], 4)]
    # blocks of 4 tokens: hits 0, 4 (block 0), 8 (blocks 0, 1), 0 → 12 of 30 tokens
    assert ideal_hit_rate(rows, 4) == pytest.approx(12 / 30)
    # room for 3 blocks: after row 2 the cache holds 0, 2, and 1 (LRU: 1 was refreshed least recently);
    # row 3 hits 0 and 1, then inserting 3 evicts 2
    assert ideal_hit_rate(rows, 4, 3, "blocks") == pytest.approx(12 / 30)
    # room for 2 blocks: row 2 evicts 1, so row 3 hits only block 0
    assert ideal_hit_rate(rows, 4, 2, "blocks") == pytest.approx(8 / 30)
    assert ideal_hit_rate(rows, 4, 8, "tokens") == ideal_hit_rate(rows, 4, 2, "blocks")
    assert ideal_hit_rate([TraceRow(0, 5, 1)], 4) == 0.0


def test_rate_stats_by_hand() -> None:
    st = rate_stats([0.0, 0.0, 0.5, 2.0, 2.5])
    assert st["mean_rate"] == 2.0 and st["peak_rate_1s"] == 3.0 and st["peak_rate_1s_aligned"] == 3.0
    assert st["empty_share_1s"] == pytest.approx(1 / 3)
    assert st["gap_cv"] == pytest.approx(0.296875**0.5 / 0.625)  # gaps 0, 0.5, 1.5, 0.5


@pytest.mark.skipif(not MOONCAKE.exists(), reason="shared Mooncake trace not present")
def test_mooncake_conversation_matches_the_fact_sheet() -> None:
    trace = read_trace(MOONCAKE)
    st = trace_stats(trace.rows, [r.timestamp_ns / 1e9 for r in trace.rows], 512)
    assert st["rows"] == 12031
    assert round(st["mean_rate"], 2) == 3.40 and round(st["gap_cv"], 2) == 3.03
    assert st["peak_rate_1s"] == 28.0 and round(st["peak_rate_10s"], 1) == 7.3
    assert round(st["peak_rate_10s_aligned"], 1) == 6.7
    assert round(st["input_length"]["mean"]) == 12035 and st["input_length"]["p50"] == 6909
    assert round(st["input_length"]["p99"], -2) == 85400
    assert round(st["output_length"]["mean"]) == 343 and round(st["output_length"]["p99"]) == 1119
    assert round(st["input_tokens_per_s"]) == 40937
    assert round(100 * st["hit_rate_infinite"], 2) == 37.36
    table = {1000: 4.5, 3000: 6.7, 10_000: 21.6, 30_000: 33.2, 100_000: 37.1}
    for blocks, percent in table.items():
        assert round(100 * (ideal_hit_rate(trace.rows, 512, blocks, "blocks") or 0), 1) == percent


@pytest.mark.skipif(not AZURE.exists(), reason="shared Azure trace not present")
def test_azure_conversation_matches_the_fact_sheet() -> None:
    trace = read_trace(AZURE)
    st = trace_stats(trace.rows, [r.timestamp_ns / 1e9 for r in trace.rows], 512, [1e6])
    assert st["rows"] == 19366 and round(st["mean_rate"], 2) == 5.53 and round(st["gap_cv"], 2) == 1.09
    assert (st["peak_rate_1s"], st["peak_rate_1s_aligned"]) == (19.0, 16.0)
    assert (round(st["peak_rate_10s"], 1), round(st["peak_rate_10s_aligned"], 1)) == (11.2, 9.8)
    assert [round(st["input_length"][k]) for k in ("mean", "p50", "p99")] == [1155, 1020, 4142]
    assert [round(st["output_length"][k]) for k in ("mean", "p50", "p99")] == [211, 129, 601]
    assert st["hit_rate_infinite"] is None and st["hit_rate_lru"] == {"1e+06": None}


def _mooncake_file(tmp_path: Path) -> Path:
    """10 conversations × 4 turns, 16-token blocks: turn t sends t + 2 full blocks of its conversation
    (each turn extends the previous prompt); the last turn adds a partial block of 13 tokens."""
    rows = []
    for i in range(40):
        conv, turn = divmod(i, 4)
        ids = [1000 * conv + k for k in range(turn + 2)]
        n_in = 16 * len(ids)
        if turn == 3:
            ids.append(1000 * conv + 500)
            n_in += 13
        rows.append({"timestamp": 100 * i, "input_length": n_in, "output_length": 5, "hash_ids": ids})
    f = tmp_path / "m.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return f


def test_synth_scales_rate_lengths_and_reuse_seeded(tmp_path: Path) -> None:
    trace = read_trace(_mooncake_file(tmp_path), block_size=16)
    base = ideal_hit_rate(trace.rows, 16) or 0.0
    assert base > 0.5
    fast = synthesize(trace, rate_scale=2.0)
    assert fast.rows[-1].timestamp_ns * 2 == trace.rows[-1].timestamp_ns
    assert ideal_hit_rate(fast.rows, 16) == base
    longer = synthesize(trace, length_scale=2.0)
    assert [r.input_length for r in longer.rows] == [2 * r.input_length for r in trace.rows]
    assert ideal_hit_rate(longer.rows, 16) == pytest.approx(base, abs=0.02)
    assert ideal_hit_rate(synthesize(trace, prefix_reuse=0.0).rows, 16) == 0.0
    half = [synthesize(trace, prefix_reuse=0.5, seed=s).rows for s in (1, 1, 2)]
    assert half[0] == half[1] != half[2]
    assert 0 < (ideal_hit_rate(half[0], 16) or 0) < base
    for synth in (fast, longer, synthesize(trace, 1.0, 0.5, 0.5, 3)):  # written files read back as written
        out = tmp_path / "out.jsonl"
        write_trace(synth, out)
        back = read_trace(out, block_size=16)
        assert [(r.timestamp_ns, r.input_length, r.output_length, r.hash_ids) for r in back.rows] == [
            (r.timestamp_ns, r.input_length, r.output_length, r.hash_ids) for r in synth.rows
        ]


def test_azure_and_generic_round_trip(tmp_path: Path) -> None:
    az = tmp_path / "a.csv"
    az.write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        "2023-11-16 18:15:46.6805900,374,44\n2023-11-16 18:15:47.0000001,10,2\n"
    )
    out = tmp_path / "b.csv"
    write_trace(synthesize(read_trace(az), rate_scale=0.5), out)
    assert out.read_text().splitlines()[1:] == [
        "2023-11-16 18:15:46.6805900,374,44",
        "2023-11-16 18:15:47.3194102,10,2",
    ]
    gen = tmp_path / "g.csv"
    gen.write_text(
        "timestamp_s,input_length,output_length,prefix_id,prefix_length,session_id\n1.5,100,4,sys,60,a\n2,30,2,,,b\n"
    )
    out = tmp_path / "g2.csv"
    write_trace(read_trace(gen), out)
    assert out.read_text() == gen.read_text().replace("2,30", "2,30", 1).replace(",,,b", ",,0,b")


def test_trace_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = _mooncake_file(tmp_path)
    assert main(["trace", "stats", str(f), "--block-size", "16", "--cache-tokens", "64", "1000"]) == 0
    text = capsys.readouterr().out
    assert "40 rows over 3.9 s" in text and "mean 10.26 req/s" in text and "LRU 64 tokens" in text
    assert main(["trace", "stats", str(f), "--block-size", "16", "--json", "--speedup", "2"]) == 0
    st = json.loads(capsys.readouterr().out)
    assert st["span_s"] == pytest.approx(1.95) and st["hit_rate_infinite"] > 0.5
    out = tmp_path / "s.jsonl"
    assert main(["trace", "synth", str(f), "--block-size", "16", "--out", str(out), "--rate-scale", "4"]) == 0
    assert "mean rate 10.26 → 41.03 req/s" in capsys.readouterr().out
    assert len(out.read_text().splitlines()) == 40
    assert main(["trace", "synth", str(f), "--out", str(f)]) == 2
    assert "is the input file" in capsys.readouterr().err
    assert main(["trace", "stats", str(tmp_path / "missing.jsonl")]) == 2
    with pytest.raises(SystemExit) as exc:
        main(["trace", "stats", str(f), "--cache-tokens", "-5"])
    assert exc.value.code == 2
