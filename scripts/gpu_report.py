#!/usr/bin/env python3
"""Writes reports/gpu-check.md and reports/gpu-check.json for `make gpu-check`.

Reads what scripts/gpu_check.sh left in reports/: ctest.log (the test summary),
gpu-ops.jsonl (one line per CUDA-against-CPU case, written through test/cuda_compare.h) and
bench.json (bin/bench_kernels) and bench_loader.log (bin/bench_loader). Standard library only: the GPU machine has no extra packages.
"""
import argparse
import json
import re
import subprocess
from pathlib import Path

REPORTS = Path(__file__).resolve().parent.parent / "reports"


def gpu_description():
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,compute_cap,memory.total",
             "--format=csv,noheader"], capture_output=True, text=True, check=True).stdout
        name, driver, cap, memory = [f.strip() for f in out.splitlines()[0].split(",")]
        return {"name": name, "driver": driver, "compute_capability": cap, "memory": memory}
    except (OSError, subprocess.CalledProcessError, ValueError, IndexError):
        return {"name": "unknown"}


def ctest_summary(log_text):
    summary = {"passed": 0, "failed": 0, "skipped": 0, "total": 0, "failed_tests": [],
               "skipped_tests": []}
    m = re.search(r"(\d+)% tests passed, (\d+) tests failed out of (\d+)", log_text)
    if m:
        summary["failed"], summary["total"] = int(m.group(2)), int(m.group(3))
    summary["skipped_tests"] = re.findall(r"^\s*\d+ - (.+?) \(Skipped\)$", log_text, re.M)
    summary["failed_tests"] = re.findall(r"^\s*\d+ - (.+?) \((?:Failed|Timeout|SEGFAULT|"
                                         r"Subprocess aborted|Exception|Not Run)\)$",
                                         log_text, re.M)
    summary["skipped"] = len(summary["skipped_tests"])
    summary["passed"] = summary["total"] - summary["failed"] - summary["skipped"]
    return summary


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--commit", default="unknown")
    parser.add_argument("--arch", default="")
    parser.add_argument("--build-seconds", type=int, default=0)
    parser.add_argument("--test-seconds", type=int, default=0)
    parser.add_argument("--test-status", type=int, default=0)
    args = parser.parse_args()

    log = (REPORTS / "ctest.log").read_text(errors="replace") if (REPORTS / "ctest.log").exists() else ""
    ops = []
    if (REPORTS / "gpu-ops.jsonl").exists():
        ops = [json.loads(line) for line in (REPORTS / "gpu-ops.jsonl").read_text().splitlines()
               if line.strip()]
    bench = json.loads((REPORTS / "bench.json").read_text()) if (REPORTS / "bench.json").exists() else []

    report = {
        "device": gpu_description(),
        "commit": args.commit,
        "cuda_arch": args.arch,
        "build_seconds": args.build_seconds,
        "test_seconds": args.test_seconds,
        "tests": ctest_summary(log),
        "tests_exit_status": args.test_status,
        "cuda_ops": sorted(ops, key=lambda o: o["op"]),
        "benchmarks": bench,
    }
    report["cuda_ops_passed"] = sum(1 for o in ops if o["pass"])
    (REPORTS / "gpu-check.json").write_text(json.dumps(report, indent=2) + "\n")

    t = report["tests"]
    lines = [
        "# ember gpu-check",
        "",
        f"- device: {report['device'].get('name')} (compute capability "
        f"{report['device'].get('compute_capability', '?')}, driver {report['device'].get('driver', '?')}, "
        f"{report['device'].get('memory', '?')})",
        f"- commit: {args.commit}; built for CUDA_ARCH={args.arch} in {args.build_seconds} s",
        f"- tests: {t['passed']} passed, {t['failed']} failed, {t['skipped']} skipped, of "
        f"{t['total']} ({args.test_seconds} s)",
        f"- CUDA ops against the CPU: {report['cuda_ops_passed']} of {len(ops)} within tolerance "
        "(f32, TF32 off)",
        "",
    ]
    if t["failed_tests"]:
        lines += ["## Failed tests", ""] + [f"- {name}" for name in t["failed_tests"]] + [""]
    lines += ["## CUDA ops against the CPU reference", "",
              "| op | max abs error | max rel error | tolerance (abs + rel) | result |",
              "|---|---|---|---|---|"]
    for o in report["cuda_ops"]:
        lines.append(f"| {o['op']} | {o['max_abs_error']:.2e} | {o['max_rel_error']:.2e} | "
                     f"{o['atol']:.0e} + {o['rtol']:.0e} | {'pass' if o['pass'] else 'FAIL'} |")
    if bench:
        lines += ["", "## Benchmarks (bin/bench_kernels)", "",
                  "| device | benchmark | achieved | ceiling |", "|---|---|---|---|"]
        for b in bench:
            ceiling = (f"{b['ceiling']:.1f} {b['unit']} ({b['ceiling_name']}, "
                       f"{100 * b['value'] / b['ceiling']:.0f}%)" if b["ceiling"] > 0 else "")
            lines.append(f"| {b['device']} | {b['benchmark']} | {b['value']:.2f} {b['unit']} | {ceiling} |")
    loader_log = REPORTS / "bench_loader.log"
    if loader_log.exists():
        lines += ["", "## Input pipeline (bin/bench_loader)", "", "```",
                  loader_log.read_text(errors="replace").rstrip(), "```"]
    (REPORTS / "gpu-check.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines[:7]))
    print(f"gpu-check: wrote {REPORTS / 'gpu-check.md'} and gpu-check.json")


if __name__ == "__main__":
    main()
