"""Trace replay prompts: exact lengths, block sharing exactly where the trace's ids repeat, seeded."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

from sglang_test_framework.config.workload import WorkloadConfig
from sglang_test_framework.load.request_generator import RequestGenerator
from sglang_test_framework.load.trace_replay import BlockTokens, TracePrompt
from sglang_test_framework.sim.tokenizer import SimpleTokenizer

ROWS = [
    {"timestamp": 0, "input_length": 1100, "output_length": 9, "hash_ids": [0, 1, 2]},
    {"timestamp": 0, "input_length": 1024, "output_length": 3, "hash_ids": [0, 1]},
    {"timestamp": 3000, "input_length": 700, "output_length": 4, "hash_ids": [0, 5]},
    {"timestamp": 6000, "input_length": 1500, "output_length": 2, "hash_ids": [0, 1, 6]},
    {"timestamp": 6000, "input_length": 20, "output_length": 1, "hash_ids": [7]},
]


def _config(tmp_path: Path, **values: object) -> WorkloadConfig:
    f = tmp_path / "t.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    return WorkloadConfig(dataset_name="trace", dataset_path=f, **values)


def test_prompts_have_exact_lengths_and_share_exactly_the_trace_blocks(tmp_path: Path) -> None:
    cfg = _config(tmp_path, trace_speedup=3.0, trace_block_size=512)
    reqs = RequestGenerator(cfg.seed).generate_requests(cfg)
    tok = SimpleTokenizer()
    ids = [tok.encode(r.prompt_text()) for r in reqs]
    assert [len(x) for x in ids] == [r.prompt_len for r in reqs] == [row["input_length"] for row in ROWS]
    assert [r.output_len for r in reqs] == [row["output_length"] for row in ROWS]
    assert [r.arrival_offset_s for r in reqs] == [0.0, 0.0, 1.0, 2.0, 2.0]
    block = [[x[i : i + 512] for i in range(0, len(x), 512)] for x in ids]
    assert block[0][:2] == block[1] == block[3][:2] and block[0][0] == block[2][0]
    assert block[3][2][:76] != block[0][2]  # ids 6 and 2 differ
    assert block[2][1] != block[1][1][: len(block[2][1])]  # ids 5 and 1 differ
    assert block[4][0] != block[0][0][:20]
    assert all(r.prompt_token_ids is None for r in reqs)  # the built-in tokenizer re-encodes its text exactly


def test_blocks_are_a_pure_function_of_seed_and_id() -> None:
    a, b, c = BlockTokens(1, 32000, 512), BlockTokens(1, 32000, 512), BlockTokens(2, 32000, 512)
    key = ("h", 12345)
    assert a.segment(key, 512).tolist() == b.segment(key, 512).tolist()
    assert a.segment(key, 512).tolist() != c.segment(key, 512).tolist()
    assert a.segment(key, 100).tolist() == b.segment(key, 512).tolist()[:100]
    assert a.segment(("p", "sys"), 64).tolist() == b.segment(("p", "sys"), 64).tolist()
    assert a.prompt([(("h", 1), 512), (("h", 2), 3)]) == [
        *b.segment(("h", 1), 512).tolist(),
        *b.segment(("h", 2), 3).tolist(),
    ]


def test_num_prompts_caps_the_rows_and_the_window_applies(tmp_path: Path) -> None:
    cfg = _config(tmp_path, num_prompts=2)
    assert len(RequestGenerator(cfg.seed).generate_requests(cfg)) == 2
    cfg = _config(tmp_path, trace_start_s=3.0)
    reqs = RequestGenerator(cfg.seed).generate_requests(cfg)
    assert [r.prompt_len for r in reqs] == [700, 1500, 20] and reqs[0].arrival_offset_s == 0.0


def test_generic_sessions_become_groups(tmp_path: Path) -> None:
    f = tmp_path / "g.csv"
    f.write_text("timestamp_ms,input_length,output_length,session_id\n0,5,1,x\n10,6,1,y\n20,7,1,x\n")
    cfg = WorkloadConfig(dataset_name="trace", dataset_path=f)
    reqs = RequestGenerator(cfg.seed).generate_requests(cfg)
    assert [r.group_id for r in reqs] == [0, 1, 0]
    assert [r.arrival_offset_s for r in reqs] == [0.0, 0.01, 0.02]


def test_prompt_text_is_built_at_send_time_and_survives_pickling(tmp_path: Path) -> None:
    f = tmp_path / "g.jsonl"
    rows = [
        {"timestamp_s": 0, "input_length": 40, "output_length": 1, "prefix_id": "sys", "prefix_length": 30},
        {"timestamp_s": 1, "input_length": 35, "output_length": 1, "prefix_id": "sys", "prefix_length": 30},
    ]
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    for cfg in (_config(tmp_path, trace_block_size=512), WorkloadConfig(dataset_name="trace", dataset_path=f)):
        reqs = RequestGenerator(cfg.seed).generate_requests(cfg)
        assert all(r.prompt == "" and isinstance(r.prompt_source, TracePrompt) for r in reqs)  # nothing held
        texts = [r.prompt_text() for r in reqs]
        tok = SimpleTokenizer()
        for r, text in zip(reqs, texts, strict=True):
            assert isinstance(r.prompt_source, TracePrompt)
            blocks, row = r.prompt_source.blocks, r.prompt_source.row
            assert text == tok.decode(blocks.prompt(row.segments(cfg.trace_block_size)))  # cached = decoded
            assert text == r.prompt_text()  # the second build (from the text cache) is the same
        copies = pickle.loads(pickle.dumps(reqs))  # how requests travel to client processes
        assert [r.prompt_text() for r in copies] == texts
