#!/usr/bin/env python3
"""Count the Python bytecodes per call the gateway runs, function by function, metering on and off.

Time and instruction counts (`bench_instructions.py`) say how much metering costs; this says where.
For each case (the bench's chat and streaming cases) and each target (`gateway`, `gateway-nometer`)
it starts the fake upstream and the gateway as `scripts/bench` sets them up, the gateway under a
tracer that counts every bytecode the event loop's thread runs (`sys.settrace` with opcode events,
switched on by SIGUSR1 once the warm-up is done, written out on SIGUSR2). It sends --warmup calls,
then --calls calls over --concurrency connections, and prints the bytecodes per call of both targets
and the functions (and files) whose count differs most: what metering adds, and where.

    python scripts/bench_opcodes.py                          # stream-20
    python scripts/bench_opcodes.py --cases chat,stream-20 --top 40

The difference repeats to within ~10% from run to run (how many ledger rows are written while
counting, and how chunks coalesce, vary a little). The counts are bytecodes, not time: a bytecode
that calls into C (orjson, a `bytes` search, SQLite) counts once whatever that costs, and work on
other threads (aiosqlite's) is not counted. The tracer slows the gateway ~30 times, so streams
arrive in fewer, larger chunks than in a real run. Compare the two targets with each other only.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SETTLE_S = 1.0  # for the last calls' observers and ledger batch to run before counting stops
TARGETS = ("gateway", "gateway-nometer")
TraceFunction = Callable[[FrameType, str, Any], Any]


def serve_traced(output: Path, gateway_argv: list[str]) -> int:
    """Run the gateway's CLI with a bytecode counter: SIGUSR1 starts counting, SIGUSR2 writes the
    counts (`file:line:function` -> bytecodes, `calls file:line:function` -> calls) to `output`."""
    counts: collections.Counter[str] = collections.Counter()

    def tracer(frame: FrameType, event: str, _arg: Any) -> TraceFunction:
        code = frame.f_code
        where = "/".join(Path(code.co_filename).parts[-2:])  # aiohttp/streams.py, extractors/streams.py
        name = f"{where}:{code.co_firstlineno}:{code.co_name}"
        counts["calls " + name] += 1
        frame.f_trace_opcodes, frame.f_trace_lines = True, False

        def count(frame: FrameType, event: str, _arg: Any) -> TraceFunction:
            if event == "opcode":
                counts[name] += 1
            return count

        return count

    def start(*_: object) -> None:
        sys.settrace(tracer)

    def write(*_: object) -> None:
        sys.settrace(None)
        output.write_text(json.dumps(counts))

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, write)
    sys.path.insert(0, str(REPO))
    from gateway.cli.main import main

    return main(gateway_argv)


def measure(case: Any, target: str, calls: int, warmup: int, concurrency: int, tmp: Path) -> dict[str, float]:
    """Bytecodes (and calls) per call of `case` through `target`, by function."""
    from bench_instructions import bench, send_calls

    processes = bench.Processes(pin=bench.can_pin())
    work = Path(tempfile.mkdtemp(prefix=f"{target}-{case.name}-", dir=tmp))
    output = work / "opcodes.json"
    try:
        upstream_port = bench.free_port()
        script = str(bench.SCRIPTS / "fake_upstream.py")
        argv = [sys.executable, script, "--port", str(upstream_port), "--no-record"]
        upstream = processes.start(argv, bench.LOAD_CPU, work / "upstream.log")
        processes.wait_listening(upstream, upstream_port, work / "upstream.log")
        gateway = bench.set_up_gateway(upstream_port, work)
        argv = [sys.executable, __file__, "--serve-traced", str(output), "--config", str(gateway.config)]
        argv.append("serve")
        env = bench.BUILT_IN_VARIANTS.get(target, {})
        pid = processes.start(argv, bench.PROXY_CPU, work / "gateway.log", env=env)
        processes.wait_listening(pid, gateway.port, work / "gateway.log")

        def load(count: int) -> None:
            each = [count // concurrency + (i < count % concurrency) for i in range(concurrency)]
            threads = [
                threading.Thread(target=send_calls, args=(gateway.port, gateway.key, case, n)) for n in each
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()

        load(warmup)
        time.sleep(SETTLE_S)
        os.kill(pid, signal.SIGUSR1)
        load(calls)
        time.sleep(SETTLE_S)
        os.kill(pid, signal.SIGUSR2)
        deadline = time.monotonic() + 60
        while not output.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(0.5)  # written at once, but let it finish
        counts = json.loads(output.read_text())
        return {name: count / calls for name, count in counts.items()}
    finally:
        processes.stop_all()


def bytecodes(per_call: dict[str, float]) -> float:
    return sum(count for name, count in per_call.items() if not name.startswith("calls "))


def by_file(per_call: dict[str, float]) -> dict[str, float]:
    files: collections.Counter[str] = collections.Counter()
    for name, count in per_call.items():
        if not name.startswith("calls "):
            files[name.partition(":")[0]] += count  # type: ignore[assignment]
    return dict(files)


def render(case: str, on: dict[str, float], off: dict[str, float], top: int) -> str:
    total_on, total_off = bytecodes(on), bytecodes(off)
    added = total_on - total_off
    lines = [
        f"{case}: {total_on:,.0f} bytecodes a call with metering, {total_off:,.0f} without "
        f"({added:+,.0f}, {added / total_on:.1%} of the metered gateway's)",
        f"  {'bytecodes':>10} {'calls':>6}  function (metering on minus off, per call)",
    ]
    names = {name for name in (*on, *off) if not name.startswith("calls ")}
    differences = sorted(((on.get(name, 0) - off.get(name, 0), name) for name in names), reverse=True)
    shown = [row for row in differences if abs(row[0]) >= 0.5]
    for difference, name in sorted(shown, key=lambda row: -abs(row[0]))[:top]:
        called = on.get("calls " + name, 0) - off.get("calls " + name, 0)
        lines.append(f"  {difference:>+10,.1f} {called:>+6.1f}  {name}")
    lines.append(f"  {'bytecodes':>10}         file (metering on minus off, per call)")
    files_on, files_off = by_file(on), by_file(off)
    file_rows = [(files_on.get(f, 0) - files_off.get(f, 0), f) for f in {*files_on, *files_off}]
    for difference, name in sorted(file_rows, key=lambda row: -abs(row[0]))[: max(top // 2, 5)]:
        lines.append(f"  {difference:>+10,.1f}         {name}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--cases",
        default="stream-20",
        help="comma-separated cases: chat and stream-N (default stream-20)",
    )
    parser.add_argument("--calls", type=int, default=400, help="calls counted per target (default 400)")
    parser.add_argument("--warmup", type=int, default=300, help="calls sent before counting (default 300)")
    parser.add_argument(
        "--concurrency", type=int, default=4, help="connections the calls are spread over (default 4)"
    )
    parser.add_argument("--top", type=int, default=30, help="functions listed per case (default 30)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write every count per call to FILE")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from bench_instructions import bench, cases_named

    results: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="tollgate-opcodes-") as tmp:
        for case in cases_named(bench.comma_list(args.cases)):
            for target in TARGETS:
                bench.say(f"  {target:<16} {case.name:<11} {args.calls} calls, bytecodes counted")
                results.setdefault(case.name, {})[target] = measure(
                    case, target, args.calls, args.warmup, args.concurrency, Path(tmp)
                )
            counted = results[case.name]
            print(render(case.name, counted["gateway"], counted["gateway-nometer"], args.top))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--serve-traced":  # the gateway under the counter (see `measure`)
        raise SystemExit(serve_traced(Path(sys.argv[2]), sys.argv[3:]))
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.path.insert(0, str(REPO / "scripts"))
    from bench_instructions import bench

    bench.reexec_under_venv(__file__)
    raise SystemExit(main())
