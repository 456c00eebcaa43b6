#!/usr/bin/env python3
"""Count the user-space instructions per call the gateway spends, metering on and off, with callgrind.

Throughput on a shared machine varies by 20-30% from one run of `scripts/bench` to the next, more than
metering costs; instruction counts repeat to within a percent or two. For each case (the bench's chat
and streaming cases) and each target (`gateway`, `gateway-nometer`) this script starts the fake
upstream and the gateway as `scripts/bench` sets them up, the gateway under valgrind's callgrind with
counting switched off; sends --warmup calls, switches counting on for --calls sequential calls, and
reads the total over every thread of the gateway (the event loop and aiosqlite's). The ledger's
flush interval is set to 60 s so that records are written in full batches, as under load, not one
by one as a sequential client would otherwise leave them; calls are counted in whole batches, and
each batch is written before counting stops.

    python scripts/bench_instructions.py                       # chat, stream-20, stream-200
    python scripts/bench_instructions.py --cases stream-20 --calls 3000

Needs valgrind (`callgrind_control` included). Each measurement takes about a minute (stream-200
about three); under valgrind the gateway runs ~50 times slower, so chunking differs from a
real run's (one more reason to compare on and off only with each other).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from importlib.machinery import SourceFileLoader
from importlib.util import module_from_spec, spec_from_loader
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parent.parent
VALGRIND_READY_TIMEOUT_S = 180.0
BATCH = 500  # metering.batch_size's default, which the bench's config keeps
SETTLE_S = 5.0  # ample for one batch to be written under valgrind


def load_bench() -> ModuleType:
    """`scripts/bench` as a module (it has no .py suffix): its set-up of upstream and gateway is reused."""
    loader = SourceFileLoader("bench", str(REPO / "scripts" / "bench"))
    spec = spec_from_loader("bench", loader)
    assert spec is not None
    module = module_from_spec(spec)
    sys.modules["bench"] = module  # its dataclasses look their module up
    loader.exec_module(module)
    return module


bench = load_bench()


def batch_records_fully(config: Path) -> None:
    """Set the ledger's flush interval to 60 s in the bench's gateway config (see the docstring)."""
    text = config.read_text()
    if text.count("metering: {") != 1:
        raise bench.BenchError("the bench config has no single `metering: {...}` line: update this script")
    config.write_text(text.replace("metering: {", "metering: {flush_interval_seconds: 60, "))


def send_calls(port: int, key: str, case: bench.Case, count: int) -> None:
    """`count` sequential calls of `case` on one connection, each read to its end."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    headers = {**case.headers, "authorization": f"Bearer {key}"}
    try:
        for _ in range(count):
            connection.request("POST", f"/bench{bench.CHAT_PATH}", case.body, headers)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise bench.BenchError(f"{case.name}: the gateway answered {response.status}")
    finally:
        connection.close()


def callgrind_control(*args: str) -> None:
    subprocess.run(["callgrind_control", *args], check=True, capture_output=True, timeout=120)


def instructions_in(outputs: Path) -> int:
    """The sum of the `totals:` lines of every callgrind output file (one per thread) in `outputs`."""
    total = 0
    for path in outputs.glob("callgrind.out.*"):
        match = re.search(r"^totals:\s+(\d+)", path.read_text(errors="replace"), re.MULTILINE)
        total += int(match.group(1)) if match else 0
    return total


def measure(case: bench.Case, target: str, calls: int, warmup: int, tmp: Path, keep: Path | None) -> int:
    """Instructions per call of `case` through the gateway `target`, counted over `calls` calls; with
    `keep`, callgrind's output files are copied to `keep`/`target`-`case` for callgrind_annotate."""
    processes = bench.Processes(pin=bench.can_pin())
    work = Path(tempfile.mkdtemp(prefix=f"{target}-{case.name}-", dir=tmp))
    try:
        upstream_port = bench.free_port()
        upstream = processes.start(
            [
                sys.executable,
                str(bench.SCRIPTS / "fake_upstream.py"),
                "--port",
                str(upstream_port),
                "--no-record",
            ],
            bench.LOAD_CPU,
            work / "upstream.log",
        )
        processes.wait_listening(upstream, upstream_port, work / "upstream.log")
        gateway = bench.set_up_gateway(upstream_port, work)
        batch_records_fully(gateway.config)
        outputs = work / "callgrind"
        outputs.mkdir()
        argv = [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            "--separate-threads=yes",
            f"--callgrind-out-file={outputs}/callgrind.out.%p",
            sys.executable,
            "-m",
            "gateway",
            "--config",
            str(gateway.config),
            "serve",
        ]
        env = bench.BUILT_IN_VARIANTS.get(target, {})
        pid = processes.start(argv, bench.PROXY_CPU, work / "gateway.log", env=env)
        processes.wait_listening(pid, gateway.port, work / "gateway.log", VALGRIND_READY_TIMEOUT_S)
        send_calls(gateway.port, gateway.key, case, warmup)
        time.sleep(SETTLE_S)  # the warm-up's last batch written before counting starts
        callgrind_control("--instr=on", str(pid))
        send_calls(gateway.port, gateway.key, case, calls)
        time.sleep(SETTLE_S)  # the counted calls' last batch written before counting stops
        callgrind_control("--instr=off", str(pid))
        callgrind_control("--dump", str(pid))
        time.sleep(1.0)  # the dump is written asynchronously
        if keep is not None:
            shutil.copytree(outputs, keep / f"{target}-{case.name}", dirs_exist_ok=True)
        return instructions_in(outputs) // calls
    finally:
        processes.stop_all()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--cases",
        type=bench.comma_list,
        default=["chat", "stream-20", "stream-200"],
        help="cases to count: chat and stream-N (default chat,stream-20,stream-200)",
    )
    parser.add_argument(
        "--targets",
        type=bench.comma_list,
        default=["gateway", "gateway-nometer"],
        help="gateway, gateway-nometer or both (default both)",
    )
    parser.add_argument(
        "--calls",
        type=int,
        default=2000,
        help="calls counted per measurement, in whole batches of 500 (default 2000; a stream-N case "
        "with N > 20 gets calls*20/N)",
    )
    parser.add_argument(
        "--warmup", type=int, default=BATCH, help=f"calls sent before counting (default {BATCH})"
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the counts as JSON to FILE")
    parser.add_argument(
        "--keep",
        type=Path,
        metavar="DIR",
        help="keep callgrind's output files (one per thread) in DIR/TARGET-CASE, to see where the "
        "instructions go with callgrind_annotate",
    )
    return parser.parse_args(argv)


def cases_named(names: list[str]) -> list[bench.Case]:
    chunks = [int(name.removeprefix("stream-")) for name in names if name.startswith("stream-")]
    known = {case.name: case for case in bench.build_cases(chunks)}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise SystemExit(f"unknown cases {unknown}: use chat and stream-N")
    return [known[name] for name in names]


def calls_for(case: bench.Case, calls: int) -> int:
    """`calls`, fewer for long streams, in whole ledger batches: each counted call's record is written."""
    wanted = calls if not case.chunks or case.chunks <= 20 else calls * 20 // case.chunks
    return max(round(wanted / BATCH), 1) * BATCH


def render(counts: dict[str, dict[str, int]]) -> str:
    lines = [f"{'case':<11} {'gateway':>12} {'nometer':>12} {'metering':>10} {'share':>7}"]
    for name, by_target in counts.items():
        on, off = by_target.get("gateway"), by_target.get("gateway-nometer")
        cells = [f"{on:,}" if on else "-", f"{off:,}" if off else "-"]
        cells += [f"{on - off:+,}", f"{(on - off) / on:.1%}"] if on and off else ["-", "-"]
        lines.append(f"{name:<11} {cells[0]:>12} {cells[1]:>12} {cells[2]:>10} {cells[3]:>7}")
    lines.append(
        "(user-space instructions per call; share: metering's part of the metered gateway's "
        "instructions, as the bench's throughput cost is its part of the time)"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("valgrind (with callgrind_control) is needed: install it, e.g. the valgrind package")
    unknown = [target for target in args.targets if target not in ("gateway", "gateway-nometer")]
    if unknown:
        raise SystemExit(f"unknown targets {unknown}: use gateway and gateway-nometer")
    counts: dict[str, dict[str, int]] = {}
    with tempfile.TemporaryDirectory(prefix="tollgate-instructions-") as tmp:
        for case in cases_named(args.cases):
            for target in args.targets:
                calls = calls_for(case, args.calls)
                bench.say(f"  {target:<16} {case.name:<11} {calls} calls under callgrind")
                counts.setdefault(case.name, {})[target] = measure(
                    case, target, calls, args.warmup, Path(tmp), args.keep
                )
    print(render(counts))
    if args.json:
        args.json.write_text(json.dumps(counts, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")  # the gateways it starts hash alike from run to run
    bench.reexec_under_venv(__file__)
    raise SystemExit(main())
