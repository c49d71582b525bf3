"""`make bench`: every benchmark, one after the other, then one report.

    python -m bench.suite                 # all of them (about 15 minutes on 2 cores)
    python -m bench.suite --only training # some of them; the others' last reports are reused

`bench.run` (the foundation: echo, raw insert, SetStatus, view lag) writes docs/benchmarks.md;
each service's module writes docs/bench/<name>.md with its own workload and the bare baseline
it measured in the same run. This appends those reports to docs/benchmarks.md, so the ratios of
every service are read in one place. Each module runs in its own process with its own servers,
so one cannot slow the next.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
FOUNDATION = "run"
SERVICE_BENCHES = ["scheduling", "training", "performance", "sdk"]
SECTION_MARK = "\n<!-- service benchmarks -->\n"


def available() -> list[str]:
    return [name for name in SERVICE_BENCHES if (ROOT / "bench" / f"{name}.py").exists()]


def run_module(name: str) -> tuple[bool, float]:
    began = time.monotonic()
    print(f"==> python -m bench.{name}", flush=True)
    done = subprocess.run([sys.executable, "-m", f"bench.{name}"], cwd=ROOT, check=False)
    return done.returncode == 0, time.monotonic() - began


def demoted(markdown: str) -> str:
    """A report's headings one level down, so it nests under a section of benchmarks.md."""
    return "\n".join("#" + line if line.startswith("#") else line for line in markdown.splitlines())


def append_service_reports(names: list[str], failed: dict[str, str]) -> None:
    main = DOCS / "benchmarks.md"
    text = main.read_text() if main.exists() else "# Benchmarks\n"
    text = text.split(SECTION_MARK, 1)[0].rstrip("\n") + "\n" + SECTION_MARK
    parts = [
        "## Service benchmarks\n\n"
        "Each section below is `docs/bench/<name>.md`, written by `python -m bench.<name>` in "
        "this `make bench` (or, with `--only`, in the run named by its own date line)."
    ]
    for name in names:
        report = DOCS / "bench" / f"{name}.md"
        if name in failed:
            parts.append(f"### {name}\n\n**This run failed**: {failed[name]}")
        elif report.exists():
            parts.append(demoted(report.read_text().strip()))
    main.write_text(text + "\n\n".join(parts) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=[FOUNDATION, *SERVICE_BENCHES])
    args = parser.parse_args()
    chosen = args.only or [FOUNDATION, *available()]
    failed: dict[str, str] = {}
    timings: list[str] = []
    for name in chosen:
        ok, seconds = run_module(name)
        timings.append(f"{name} {seconds:.0f} s{'' if ok else ' (failed)'}")
        if not ok:
            failed[name] = f"`python -m bench.{name}` exited with an error; see its output"
    append_service_reports(available(), failed)
    print("bench: " + ", ".join(timings))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
