"""Client precision and cost against a reference server with exactly known timing.

    python benchmarks/client_precision.py [--rates 50 200 500 1000 2000] [--seconds 3] [--processes 1]
    python benchmarks/client_precision.py --profile 500      # where the client's CPU goes, per request

The reference server (``benchmarks/reference_server.py``, its own process, nothing shared with the
simulator) writes each request's first token at arrival + TTFT (20 ms) and one more every ITL (5 ms),
and logs when it really wrote each one. This process runs the client exactly as a run does:
``RequestGenerator`` requests (random dataset, 100-token prompts, 16 output tokens, ignore_eos, seeded
Poisson arrivals), then the scenario runner's ``execute_workload`` (warmup, ``/flush_cache``,
``dispatch()`` + ``RequestSender`` streaming ``/generate``, every record appended to ``requests.jsonl``
by the ``MetricsCollector``, the progress bar, drawn to /dev/null). Server scraping is off (the
reference server has no ``/metrics``; scraping costs per second, not per request).

Per rate, ``max(--min-requests, rate × --seconds)`` requests; one markdown row each:

- achieved: (N − 1) / (last send − first send); ``vs sched`` compares it with the schedule's own
  rate (N − 1) / (last − first scheduled arrival), so Poisson sampling noise is not counted as error.
- lag: arrival_ns − scheduled_ns (when the dispatcher's timer fired vs when it should have);
  send lag: send_ns − scheduled_ns (adds the time until the request's task ran and built its body).
- TTFT error: client TTFT (first_token_ns − send_ns) − true TTFT (first token write − arrival at the
  server). It is the client's added error, and the shared clock splits it in two legs: send→server
  (send_ns to the server's arrival stamp: building and writing the request, loopback, the server
  accepting it) and first write→read (the server's write to the client's read stamp: loopback and the
  client's event-loop delay before its stream task ran). ITL error: each client ITL (the ``itl_ms``
  metric) − the true gap between the same two token writes; mean (signed) and p99 of |error|.
- client CPU: CPU time of this process (all threads, ``time.process_time``) from just before dispatch
  until the last request finished, minus an idle baseline (the CPU the same process burns per second
  with an event loop and an open session but nothing to do, measured once, times the run's wall time),
  ÷ requests: the marginal client CPU per request. Warmup, request generation and the summary are
  outside the window. Server CPU: the reference server's CPU in the same window ÷ requests.
- server late p99: how late the reference server wrote tokens against their deadlines (the truth is
  what it really wrote, so this does not enter the errors; it shows the server kept up).
- sustained: no failed request, lag p99 ≤ 1 ms and achieved within 1 % of the schedule's rate.
- self-check: the verdict every run's summary carries (``client_bound``, metrics/client_check.py,
  docs/client-precision.md) from the same records and the client processes' CPU: whether the client
  would have flagged this run itself.

Then the largest rate one process sustains is searched, for lag p99 ≤ 1 ms and (``--search-lag-ms``)
a looser 5 ms that separates throughput from timer precision: geometric bisection between the last
sustained and the first unsustained rate, each probe a fresh run of the same size rule. ``--processes
N`` (N > 1) repeats the table and the search with the multi-process client (``client_processes=N``:
N worker processes on one schedule, docs/client-processes.md); every other row pins one process. Its
client CPU is the sum over the workers and the driver (each one's ``ClientProcessStats`` over the load)
minus the idle baseline times each one's wall time.

``--profile RATE`` instead runs one rate with a statistical CPU profiler (SIGPROF on the process CPU
clock; each sample charged to the innermost recognised frame of the interrupted stack) and the
garbage collector timed, and prints the client's CPU per request by category (payload build, HTTP
write/read, SSE split / JSON decode / field extraction, JSONL append, columns, progress, dispatch,
event loop) and by function.

Figures only; nothing is asserted. Both processes share this machine's cores with whatever else runs
on it: the load average is printed at the start and the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import gc
import json
import math
import os
import platform
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import aiohttp
import numpy as np
import psutil

from sglang_test_framework.client.request_sender import RequestSender
from sglang_test_framework.config.workload import WorkloadConfig
from sglang_test_framework.load.request_generator import RequestGenerator
from sglang_test_framework.metrics.client_check import check_client
from sglang_test_framework.metrics.columns import RequestColumns
from sglang_test_framework.metrics.definitions import itl_ms
from sglang_test_framework.records import ClientProcessStats, RequestRecord
from sglang_test_framework.scenarios.runner import ExecutionOptions, LoadTarget, ScenarioRun, execute_workload

SERVER_SCRIPT = Path(__file__).with_name("reference_server.py")
DEFAULT_RATES = (50.0, 200.0, 500.0, 1000.0, 2000.0)
LAG_P99_TARGET_MS = 1.0
RATE_TOLERANCE = 0.01
NS_PER_MS = 1e6


@dataclass(frozen=True)
class BenchConfig:
    """What every run sends and how long it lasts."""

    ttft_ms: float = 20.0
    itl_ms: float = 5.0
    input_len: int = 100
    output_len: int = 16
    seconds: float = 3.0
    min_requests: int = 300
    seed: int = 42
    progress: bool = True
    processes: int = 1

    def requests_at(self, rate: float) -> int:
        """Requests of one run at ``rate`` req/s."""
        return max(self.min_requests, round(rate * self.seconds))

    def workload(self, rate: float) -> WorkloadConfig:
        """The run's workload, as a config file would give it."""
        return WorkloadConfig(
            dataset_name="random",
            random_input_len=self.input_len,
            random_output_len=self.output_len,
            random_range_ratio=1.0,
            num_prompts=self.requests_at(rate),
            request_rate=rate,
            seed=self.seed,
            ignore_eos=True,
            stream=True,
            warmup_requests=2,
            client_processes=self.processes,
        )


class ReferenceServer:
    """``benchmarks/reference_server.py`` as a subprocess: own process group, log to a file, ready when it
    prints its address (racing its exit), stopped with SIGTERM → wait → SIGKILL."""

    def __init__(self, cfg: BenchConfig, workdir: Path) -> None:
        self.truth_path = workdir / "truth.jsonl"
        self.log_path = workdir / "reference_server.log"
        self._argv = [sys.executable, str(SERVER_SCRIPT), "--port", "0", "--truth", str(self.truth_path)]
        self._argv += ["--ttft-ms", str(cfg.ttft_ms), "--itl-ms", str(cfg.itl_ms)]
        self._proc: subprocess.Popen[bytes] | None = None
        self._ps: psutil.Process | None = None
        self.url = ""

    def __enter__(self) -> ReferenceServer:
        with self.log_path.open("wb") as log:
            self._proc = subprocess.Popen(self._argv, stdout=subprocess.PIPE, stderr=log, start_new_session=True)
        assert self._proc.stdout is not None
        line = b""
        with selectors.DefaultSelector() as sel:
            sel.register(self._proc.stdout, selectors.EVENT_READ)
            deadline = time.monotonic() + 30
            while not line and self._proc.poll() is None and time.monotonic() < deadline:
                if sel.select(timeout=0.2):
                    line = self._proc.stdout.readline()
        if not line.startswith(b"listening on "):
            self.__exit__(None, None, None)
            tail = self.log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the reference server did not start (exit {self._proc.returncode}):\n{tail}")
        self.url = line.decode().split()[-1]
        self._ps = psutil.Process(self._proc.pid)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()

    def cpu_s(self) -> float:
        """User + system CPU seconds of the server so far."""
        assert self._ps is not None
        times = self._ps.cpu_times()
        return float(times.user + times.system)

    def truth_size(self) -> int:
        """Current size of the truth file: read from here on to get the entries of later requests."""
        return self.truth_path.stat().st_size if self.truth_path.exists() else 0

    def read_truth(self, offset: int, rids: set[str], wait_s: float = 3.0) -> dict[str, dict[str, Any]]:
        """Truth entries written after ``offset`` for ``rids`` (waits briefly for the last to be logged)."""
        deadline = time.monotonic() + wait_s
        while True:
            with self.truth_path.open("rb") as fh:
                fh.seek(offset)
                entries = [json.loads(line) for line in fh.read().splitlines() if line.strip()]
            found = {e["rid"]: e for e in entries if e["rid"] in rids}
            if len(found) == len(rids) or time.monotonic() > deadline:
                return found
            time.sleep(0.05)


@dataclass
class RunMeasure:
    """Raw outcome of one run: its records and the CPU / wall time of the measured window."""

    records: list[RequestRecord]
    client_cpu_s: float
    server_cpu_s: float
    wall_s: float
    truth: dict[str, dict[str, Any]] = field(default_factory=dict)
    process_wall_s: float | None = None
    """With several client processes: the sum of their wall times (the idle baseline applies to each)."""
    processes: list[ClientProcessStats] = field(default_factory=list)
    """Each client process's CPU and wall time (``MetricsCollector.client_processes``), for the self-check."""


@dataclass
class RateResult:
    """One table row."""

    offered: float
    requests: int
    failed: int
    schedule_rate: float
    achieved_rate: float
    lag_ms: tuple[float, float, float]  # p50, p99, max
    send_lag_p99_ms: float
    ttft_err_ms: tuple[float, float]  # mean, p99
    request_leg_ms: tuple[float, float]  # send_ns → server arrival: mean, p99
    response_leg_ms: tuple[float, float]  # server's first-token write → client's read: mean, p99
    itl_err_ms: tuple[float, float]  # mean (signed), p99 of |error|
    client_cpu_ms: float
    server_cpu_ms: float
    server_late_p99_ms: float
    tokens_exact: bool
    client_bound_reason: str = ""
    """The run's own self-check verdict (metrics/client_check.py): "" when not client-bound."""

    @property
    def rate_ok(self) -> bool:
        """Achieved send rate within RATE_TOLERANCE of the schedule's rate."""
        return abs(self.achieved_rate / self.schedule_rate - 1) <= RATE_TOLERANCE

    def sustained(self, lag_p99_ms: float = LAG_P99_TARGET_MS) -> bool:
        """No failure, lag p99 ≤ ``lag_p99_ms``, achieved within 1 % of the schedule's rate."""
        return self.failed == 0 and self.lag_ms[1] <= lag_p99_ms and self.rate_ok


async def _idle_cpu_per_s(seconds: float) -> float:
    async with RequestSender():
        c0, t0 = time.process_time(), time.monotonic()
        await asyncio.sleep(seconds)
        return (time.process_time() - c0) / (time.monotonic() - t0)


async def _run(
    cfg: BenchConfig,
    rate: float,
    server: ReferenceServer,
    workdir: Path,
    probes: Instruments | None,
) -> RunMeasure:
    workload = cfg.workload(rate)
    requests = RequestGenerator(seed=cfg.seed).generate_requests(workload)
    run = ScenarioRun.start("client-precision", workdir / f"rate-{rate:g}", workload.model_dump(mode="json"))
    target = LoadTarget(server.url, "reference", None, [server.url], [])
    options = ExecutionOptions(collect_timeseries=False, progress=cfg.progress, label=f"{rate:g} req/s")
    start: dict[str, float] = {}

    async def on_start() -> None:
        start["server"] = server.cpu_s()
        start["wall"] = time.monotonic()
        start["cpu"] = time.process_time()
        if probes is not None:
            probes.start()

    try:
        await execute_workload(workload, requests, target, run, options, on_start=on_start)
    finally:
        if probes is not None:
            probes.stop()
    cpu, wall, server_cpu = time.process_time(), time.monotonic(), server.cpu_s()
    records = list(run.collector.records)
    run.collector.close()
    processes = run.collector.client_processes
    if cfg.processes > 1 and processes:  # the workers' CPU is theirs: sum every process's own figure
        client_cpu_s = sum(p.cpu_s for p in processes)
        return RunMeasure(
            records,
            client_cpu_s,
            server_cpu - start["server"],
            wall - start["wall"],
            process_wall_s=sum(p.wall_s for p in processes),
            processes=list(processes),
        )
    measured = RunMeasure(records, cpu - start["cpu"], server_cpu - start["server"], wall - start["wall"])
    measured.processes = list(processes)
    return measured


def measure(
    cfg: BenchConfig,
    rate: float,
    server: ReferenceServer,
    workdir: Path,
    probes: Instruments | None = None,
) -> RunMeasure:
    """One run at ``rate`` in a fresh event loop, with its truth entries."""
    offset = server.truth_size()
    with open(os.devnull, "w") as devnull, contextlib.redirect_stderr(devnull):  # the progress bar draws there
        result = asyncio.run(_run(cfg, rate, server, workdir, probes))
    result.truth = server.read_truth(offset, {r.request_id for r in result.records})
    return result


def _pct(values: Sequence[float] | np.ndarray[Any, Any], q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else math.nan


def _errors(records: list[RequestRecord], truth: dict[str, dict[str, Any]], cfg: BenchConfig) -> dict[str, Any]:
    ttft_err: list[float] = []
    request_leg: list[float] = []
    response_leg: list[float] = []
    itl_err: list[float] = []
    late: list[float] = []
    exact = True
    ttft_ns, itl_ns = cfg.ttft_ms * NS_PER_MS, cfg.itl_ms * NS_PER_MS
    for rec in records:
        t = truth.get(rec.request_id)
        if t is None or not rec.success or rec.first_token_ns is None or not t["token_ns"]:
            exact = False
            continue
        tokens = np.asarray(t["token_ns"], dtype=np.int64)
        exact &= rec.output_tokens == len(tokens) == t["completion_tokens"]
        ttft_err.append((rec.first_token_ns - rec.send_ns - (tokens[0] - t["arrival_ns"])) / NS_PER_MS)
        request_leg.append((t["arrival_ns"] - rec.send_ns) / NS_PER_MS)
        response_leg.append((rec.first_token_ns - tokens[0]) / NS_PER_MS)
        client_itl = itl_ms(rec)
        true_itl = np.diff(tokens) / NS_PER_MS
        if len(client_itl) == len(true_itl):
            itl_err.extend((np.asarray(client_itl) - true_itl).tolist())
        deadlines = t["arrival_ns"] + ttft_ns + itl_ns * np.arange(len(tokens))
        late.extend(((tokens - deadlines) / NS_PER_MS).tolist())
    return {
        "ttft": np.asarray(ttft_err),
        "request_leg": np.asarray(request_leg),
        "response_leg": np.asarray(response_leg),
        "itl": np.asarray(itl_err),
        "late": np.asarray(late),
        "exact": exact,
    }


def analyse(rate: float, m: RunMeasure, cfg: BenchConfig, idle_cpu_per_s: float) -> RateResult:
    """The table row of one run."""
    recs = sorted(m.records, key=lambda r: r.scheduled_ns)
    n = len(recs)
    sched = np.array([r.scheduled_ns for r in recs], dtype=np.int64)
    lag = (np.array([r.arrival_ns for r in recs], dtype=np.int64) - sched) / NS_PER_MS
    sends = np.array([r.send_ns for r in recs if r.send_ns], dtype=np.int64)
    send_lag = (np.array([r.send_ns for r in recs], dtype=np.int64) - sched) / NS_PER_MS
    err = _errors(recs, m.truth, cfg)
    marginal_cpu_s = m.client_cpu_s - idle_cpu_per_s * (m.process_wall_s or m.wall_s)
    return RateResult(
        offered=rate,
        requests=n,
        failed=sum(not r.success for r in recs),
        schedule_rate=(n - 1) / ((sched.max() - sched.min()) / 1e9),
        achieved_rate=(len(sends) - 1) / ((sends.max() - sends.min()) / 1e9),
        lag_ms=(_pct(lag, 50), _pct(lag, 99), float(lag.max())),
        send_lag_p99_ms=_pct(send_lag, 99),
        ttft_err_ms=(float(err["ttft"].mean()), _pct(err["ttft"], 99)),
        request_leg_ms=(float(err["request_leg"].mean()), _pct(err["request_leg"], 99)),
        response_leg_ms=(float(err["response_leg"].mean()), _pct(err["response_leg"], 99)),
        itl_err_ms=(float(err["itl"].mean()), _pct(np.abs(err["itl"]), 99)),
        client_cpu_ms=marginal_cpu_s / n * 1e3,
        server_cpu_ms=m.server_cpu_s / n * 1e3,
        server_late_p99_ms=_pct(err["late"], 99),
        tokens_exact=bool(err["exact"]),
        client_bound_reason=check_client(RequestColumns.from_records(recs), m.processes).client_bound_reason,
    )


COLUMNS = 22
HEADER = (
    "| procs | offered req/s | requests | achieved req/s | vs sched | lag p50 ms | lag p99 ms | lag max ms "
    "| send lag p99 ms | TTFT err mean ms | TTFT err p99 ms | send→server mean / p99 ms "
    "| first write→read mean / p99 ms | ITL err mean ms | ITL \\|err\\| p99 ms "
    "| client CPU ms/req | server CPU ms/req | server late p99 ms | failed | tokens exact | sustained "
    "| self-check: client-bound |"
)


def row(r: RateResult, processes: int = 1) -> str:
    """One markdown table row."""
    cells = [
        f"{processes}",
        f"{r.offered:g}",
        f"{r.requests}",
        f"{r.achieved_rate:.1f}",
        f"{(r.achieved_rate / r.schedule_rate - 1) * 100:+.2f} %",
        *(f"{v:.3f}" for v in r.lag_ms),
        f"{r.send_lag_p99_ms:.3f}",
        *(f"{v:+.3f}" for v in r.ttft_err_ms),
        "{:.3f} / {:.3f}".format(*r.request_leg_ms),
        "{:.3f} / {:.3f}".format(*r.response_leg_ms),
        f"{r.itl_err_ms[0]:+.3f}",
        f"{r.itl_err_ms[1]:.3f}",
        f"{r.client_cpu_ms:.3f}",
        f"{r.server_cpu_ms:.3f}",
        f"{r.server_late_p99_ms:.3f}",
        f"{r.failed}",
        "yes" if r.tokens_exact else "NO",
        "yes" if r.sustained() else "no",
        f"YES: {r.client_bound_reason}" if r.client_bound_reason else "no",
    ]
    return "| " + " | ".join(cells) + " |"


def machine_line() -> str:
    """Cores, CPU model, load average and versions, for the table's caption."""
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (
        f"machine: {os.cpu_count()} cores ({usable} usable) {model}; load average {load}; "
        f"Python {platform.python_version()}, aiohttp {aiohttp.__version__}"
    )


def search_max_rate(
    cfg: BenchConfig,
    server: ReferenceServer,
    workdir: Path,
    rows: Sequence[RateResult],
    idle_cpu_per_s: float,
    lag_p99_ms: float = LAG_P99_TARGET_MS,
    precision: float = 1.1,
    cap: float = 64_000.0,
) -> tuple[float | None, list[RateResult]]:
    """Largest rate sustained with lag p99 ≤ ``lag_p99_ms``, to within ``precision`` (a ratio), and the
    probe runs it took.

    Starts from ``rows``: the last sustained rate before the first unsustained one brackets it; above
    them the rate doubles until a run is not sustained. A rate counts as unsustained only when a second
    run misses too: on a shared machine one miss may be a neighbour's burst. None when even the lowest
    rate is not sustained.
    """
    probes: list[RateResult] = []

    def sustained(rate: float, first: RateResult | None = None) -> bool:
        for _ in range(2 if first is None else 1):
            if first is not None and first.sustained(lag_p99_ms):
                return True
            first = analyse(rate, measure(cfg, rate, server, workdir), cfg, idle_cpu_per_s)
            probes.append(first)
        return first is not None and first.sustained(lag_p99_ms)

    lo: float | None = None
    hi: float | None = None
    for r in sorted(rows, key=lambda r: r.offered):
        if not sustained(r.offered, r):
            hi = r.offered
            break
        lo = r.offered
    if lo is None:
        return None, probes
    while hi is None:
        if lo * 2 > cap:
            return lo, probes
        if sustained(lo * 2):
            lo *= 2
        else:
            hi = lo * 2
    while hi / lo > precision:
        mid = float(round(math.sqrt(lo * hi)))
        if sustained(mid):
            lo = mid
        else:
            hi = mid
    return lo, probes


# --- profile: where the client's CPU goes ------------------------------------------------------------

_PAYLOAD = "payload build: build_payload, json.dumps, headers, RequestRecord (send_request)"
_FIELDS = "SSE fields: extract_sglang, _Stream.add"
_JSONL = "JSONL append: RecordLog.append (to_dict, json.dumps, write, flush)"
_HTTP_READ = "HTTP read: aiohttp protocol, parser, StreamReader"
_HTTP_REQUEST = "HTTP request: session.post, connector, headers, writer"
_PROGRESS = "progress: ProgressReporter + tqdm"
_LOOP = "event loop: epoll, callbacks, task steps"
# (file fragment, function or "" for any) → category. A sample is charged to the innermost frame of its
# stack that a rule names; frames no rule names (json.dumps, contextlib, asyncio.sleep, multidict, …)
# pass their time up to their caller, and a stack that matches nothing is the event loop's own work.
_RULES: tuple[tuple[str, str, str], ...] = (
    ("sglang_test_framework/client/sse.py", "", "SSE split: SSEParser.feed"),
    ("/json/decoder.py", "", "SSE JSON decode: json.loads"),
    ("/json/__init__.py", "loads", "SSE JSON decode: json.loads"),
    ("/json/__init__.py", "detect_encoding", "SSE JSON decode: json.loads"),
    ("sglang_test_framework/client/payloads.py", "build_payload", _PAYLOAD),
    ("sglang_test_framework/client/payloads.py", "", _FIELDS),
    ("sglang_test_framework/client/request_sender.py", "add", _FIELDS),
    ("sglang_test_framework/client/request_sender.py", "send_request", _PAYLOAD),
    ("sglang_test_framework/client/request_sender.py", "", "sender: stream loop, watchdog, _complete"),
    ("sglang_test_framework/client/http1.py", "encode_head", "HTTP request: http1 head, pool, connection write"),
    ("sglang_test_framework/client/http1.py", "acquire", "HTTP request: http1 head, pool, connection write"),
    ("sglang_test_framework/client/http1.py", "send", "HTTP request: http1 head, pool, connection write"),
    ("sglang_test_framework/client/http1.py", "", "HTTP read: http1 protocol, head, chunked decoding"),
    ("sglang_test_framework/metrics/record_log.py", "", _JSONL),
    ("sglang_test_framework/records.py", "to_dict", _JSONL),
    ("sglang_test_framework/metrics/", "", "columns: ColumnStore.append"),
    ("sglang_test_framework/scenarios/progress.py", "", _PROGRESS),
    ("/tqdm/", "", _PROGRESS),
    ("sglang_test_framework/load/dispatch.py", "", "dispatch: deadlines, tasks, settle"),
    ("sglang_test_framework/scenarios/runner.py", "", "runner callbacks: send, on_record"),
    ("/asyncio/selector_events.py", "write", "HTTP write: socket send"),
    ("/asyncio/selector_events.py", "_read_ready", "HTTP read: socket recv"),
    ("/aiohttp/client_proto.py", "", _HTTP_READ),
    ("/aiohttp/streams.py", "", _HTTP_READ),
    ("/aiohttp/http_parser.py", "", _HTTP_READ),
    ("/aiohttp/", "", _HTTP_REQUEST),
    ("/asyncio/base_events.py", "_run_once", _LOOP),
    ("/asyncio/events.py", "_run", _LOOP),
    ("/selectors.py", "select", _LOOP),
)


# aiohttp helpers both sides use (TimerContext around every wait, flow control): charged to the caller.
_PASS_UP = ("/aiohttp/helpers.py", "/aiohttp/base_protocol.py")


def _category(frame: FrameType | None) -> str:
    while frame is not None:
        code = frame.f_code
        if any(fragment in code.co_filename for fragment in _PASS_UP):
            frame = frame.f_back
            continue
        for fragment, function, category in _RULES:
            if fragment in code.co_filename and (not function or code.co_name.startswith(function)):
                return category
        frame = frame.f_back
    return _LOOP


class CPUSampler:
    """A statistical profiler on the process's CPU clock: SIGPROF (``ITIMER_PROF``) after every
    ``interval_s`` of CPU time, user + system; each sample charges the interrupted Python stack. Time in
    C code (a syscall, the JSON scanner) is charged to the Python frame that called it; time blocked in
    epoll is not CPU time and is never sampled. The kernel delivers it at its tick (4 ms here), so runs
    of a few seconds give hundreds to thousands of samples; the overhead is one short handler a tick."""

    def __init__(self, interval_s: float = 0.001) -> None:
        self.interval_s = interval_s
        self.categories: dict[str, int] = {}
        self.leaves: dict[str, int] = {}
        self.samples = 0

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        self.samples += 1
        category = _category(frame)
        self.categories[category] = self.categories.get(category, 0) + 1
        if frame is not None:
            code = frame.f_code
            leaf = f"{_short(code.co_filename)}:{code.co_firstlineno}({code.co_name})"
            self.leaves[leaf] = self.leaves.get(leaf, 0) + 1

    def start(self) -> None:
        """Start sampling."""
        signal.signal(signal.SIGPROF, self._handler)
        signal.setitimer(signal.ITIMER_PROF, self.interval_s, self.interval_s)

    def stop(self) -> None:
        """Stop sampling."""
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, signal.SIG_DFL)


class GCMonitor:
    """Time the garbage collector takes, via ``gc.callbacks``."""

    def __init__(self) -> None:
        self.total_s = 0.0
        self.max_pause_s = 0.0
        self.collections = [0, 0, 0]
        self._t0 = 0.0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
            return
        pause = time.perf_counter() - self._t0
        self.total_s += pause
        self.max_pause_s = max(self.max_pause_s, pause)
        self.collections[info["generation"]] += 1

    def start(self) -> None:
        """Begin timing collections."""
        gc.callbacks.append(self._callback)

    def stop(self) -> None:
        """Stop timing collections."""
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self._callback)


@dataclass
class Instruments:
    """Optional probes switched on for exactly the measured window of a run."""

    sampler: CPUSampler | None = None
    gc_monitor: GCMonitor | None = None

    def start(self) -> None:
        """Switch the probes on."""
        for probe in (self.gc_monitor, self.sampler):
            if probe is not None:
                probe.start()

    def stop(self) -> None:
        """Switch the probes off."""
        for probe in (self.sampler, self.gc_monitor):
            if probe is not None:
                probe.stop()


def profile(cfg: BenchConfig, rate: float, server: ReferenceServer, workdir: Path, idle: float, top: int) -> None:
    """Run ``rate`` once with the CPU sampler and the GC monitor on; print where the client's CPU goes,
    per request (each category's share of the samples × the run's marginal CPU per request)."""
    probes = Instruments(CPUSampler(), GCMonitor())
    result = analyse(rate, measure(cfg, rate, server, workdir, probes), cfg, idle)
    sampler, monitor = probes.sampler, probes.gc_monitor
    assert sampler is not None and monitor is not None
    n, total = result.requests, max(sampler.samples, 1)
    print(f"\n### Client CPU profile at {rate:g} req/s ({n} requests of {cfg.output_len} streamed tokens)\n")
    print(
        f"Client CPU {result.client_cpu_ms * 1e3:.0f} µs per request (marginal); lag p99 {result.lag_ms[1]:.3f} ms, "
        f"TTFT error mean/p99 {result.ttft_err_ms[0]:+.3f}/{result.ttft_err_ms[1]:+.3f} ms; {sampler.samples} CPU "
        f"samples. Garbage collector: {monitor.total_s / n * 1e6:.0f} µs per request (collections by generation "
        f"{monitor.collections}, longest pause {monitor.max_pause_s * 1e3:.2f} ms), inside the categories below.\n"
    )
    print("| category | samples | share | µs/request |\n|---|---:|---:|---:|")
    for name, count in sorted(sampler.categories.items(), key=lambda kv: -kv[1]):
        share = count / total
        print(f"| {name} | {count} | {share:.1%} | {share * result.client_cpu_ms * 1e3:.0f} |")
    print(f"\nTop {top} functions by own samples (the Python frame running, C calls charged to it):\n")
    print("| samples | share | µs/request | function |\n|---:|---:|---:|---|")
    for name, count in sorted(sampler.leaves.items(), key=lambda kv: -kv[1])[:top]:
        share = count / total
        print(f"| {count} | {share:.1%} | {share * result.client_cpu_ms * 1e3:.0f} | `{name}` |")


def _short(file: str) -> str:
    for marker, prefix in (("site-packages/", ""), ("sglang_test_framework/", "stf/"), ("/lib/python3.", "py3.")):
        if marker in file:
            return prefix + file.split(marker, 1)[1]
    return file


# --- command line ---------------------------------------------------------------------------------


@contextlib.contextmanager
def _workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="client-precision-") as tmp:
        yield Path(tmp)


def _print_rows(rows: Sequence[RateResult], processes: int = 1) -> None:
    print(HEADER)
    print("|" + "---:|" * COLUMNS)
    for r in rows:
        print(row(r, processes), flush=True)


def _table(
    cfg: BenchConfig, rates: Sequence[float], server: ReferenceServer, workdir: Path, idle: float, lags: Sequence[float]
) -> None:
    print(HEADER)
    print("|" + "---:|" * COLUMNS)
    rows = []
    for rate in rates:
        rows.append(analyse(rate, measure(cfg, rate, server, workdir), cfg, idle))
        print(row(rows[-1], cfg.processes), flush=True)
    procs = f"{cfg.processes} process{'es' if cfg.processes > 1 else ''}"
    for lag_ms in lags:
        best, probes = search_max_rate(cfg, server, workdir, rows, idle, lag_ms)
        if probes:
            print(f"\nSearch probes ({procs}, lag p99 ≤ {lag_ms:g} ms):\n")
            _print_rows(probes, cfg.processes)
        what = f"lag p99 ≤ {lag_ms:g} ms, achieved within {RATE_TOLERANCE:.0%} of the schedule, no failure"
        found = f"{best:g} req/s (bracketed to ×1.1)" if best is not None else f"none ≥ {min(rates):g} req/s"
        print(f"\nMax rate, {procs} ({what}): {found}")


def main(argv: list[str] | None = None) -> None:
    """Print the table (or, with --profile, the CPU profile at one rate)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rates", nargs="+", type=float, default=list(DEFAULT_RATES))
    p.add_argument("--seconds", type=float, default=3.0, help="each run sends rate × seconds requests")
    p.add_argument("--min-requests", type=int, default=300, help="… but at least this many")
    p.add_argument("--processes", type=int, default=1, help="also run the table with N client processes")
    p.add_argument("--ttft-ms", type=float, default=20.0)
    p.add_argument("--itl-ms", type=float, default=5.0)
    p.add_argument(
        "--search-lag-ms",
        type=float,
        nargs="*",
        default=[LAG_P99_TARGET_MS, 5.0],
        help="lag p99 limits (ms) to search the max sustained rate for (none: no search)",
    )
    p.add_argument("--no-progress", action="store_true", help="run without the (hidden) progress bar")
    p.add_argument("--profile", type=float, default=None, metavar="RATE", help="profile the client at RATE")
    p.add_argument("--top", type=int, default=25, help="functions listed by --profile")
    a = p.parse_args(argv)
    if a.processes < 1:
        p.error("--processes must be ≥ 1")
    cfg = BenchConfig(
        ttft_ms=a.ttft_ms, itl_ms=a.itl_ms, seconds=a.seconds, min_requests=a.min_requests, progress=not a.no_progress
    )
    print(
        f"## Client vs reference server: TTFT {cfg.ttft_ms:g} ms, ITL {cfg.itl_ms:g} ms, {cfg.input_len} tokens in / "
        f"{cfg.output_len} out, streaming /generate, Poisson (seed {cfg.seed}), ≥ {cfg.min_requests} requests or "
        f"rate × {cfg.seconds:g} s per run\n"
    )
    print(machine_line())
    idle = asyncio.run(_idle_cpu_per_s(1.0))
    print(f"idle baseline: {idle * 1e3:.3f} ms CPU per second (event loop + open session, nothing to do)\n")
    with _workdir() as workdir, ReferenceServer(cfg, workdir) as server:
        if a.profile is not None:
            profile(cfg, a.profile, server, workdir, idle, a.top)
        else:
            _table(cfg, a.rates, server, workdir, idle, a.search_lag_ms)
            if a.processes > 1:
                print(f"\n### {a.processes} client processes (one schedule on CLOCK_MONOTONIC)\n")
                _table(dataclasses.replace(cfg, processes=a.processes), a.rates, server, workdir, idle, a.search_lag_ms)
    print(f"load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
