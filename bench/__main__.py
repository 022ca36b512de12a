"""Run the benchmarks: `python -m bench [--mode smoke|full] [--only NAME]`.

`--only corpus` also sets VIVA_CORPUS=1: the corpus bench grades real repositories only when asked by name (or with
VIVA_CORPUS=1 in the environment); otherwise it only validates bench/corpus/repos.toml (see bench/corpus_bench.py).
"""

from __future__ import annotations

import argparse
import os
import sys

from bench import (
    compose_pod,
    corpus_bench,
    dynamic_bench,
    fleet_bench,
    gateway_bench,
    interview_bench,
    profile_bench,
    sandbox_bench,
    server_bench,
    startup_bench,
    voice_bench,
)

BENCHMARKS = {
    "profile": profile_bench.run,
    "interview": interview_bench.run,
    "sandbox": sandbox_bench.run,
    "gateway": gateway_bench.run,
    "dynamic": dynamic_bench.run,
    "compose": compose_pod.run,
    "server": server_bench.run,
    "fleet": fleet_bench.run,
    "voice": voice_bench.run,
    "startup": startup_bench.run,
    "corpus": corpus_bench.run,
}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--mode", choices=["smoke", "full"], default="smoke")
    parser.add_argument("--only", choices=sorted(BENCHMARKS), default=None)
    args = parser.parse_args()
    if args.only == "corpus":
        os.environ["VIVA_CORPUS"] = "1"  # the corpus grades only when asked for by name
    failed = False
    for name, run in BENCHMARKS.items():
        if args.only and name != args.only:
            continue
        print(f"== {name} ({args.mode})", flush=True)
        failed |= not run(args.mode)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
