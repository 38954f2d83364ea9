"""Side-by-side speed against Vidur 0.0.26 on its own workload shape.

Workload: Azure conversation lengths (Vidur's processed `splitwise_conv.csv`,
shuffled, each request capped to 4,096 tokens with Vidur's proportional rule),
Poisson 5 QPS, Llama-2-7B on one H100, TP1, chunk 512, max running requests 128.

Prints sglsim's whole-command wall time for 10,000 requests (target: >= 10x
shorter than Vidur's) and its simulated requests per second on 100,000
requests with lengths sampled from the file (target: >= 20x Vidur's). Vidur
itself runs when $VIDUR_WORK holds its set-up (see the Vidur anchor's README);
otherwise the figures measured on this kind of machine are quoted.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from common import SHARED, VIDUR_CSV, require, sglsim_command, time_command

VIDUR_RECORDED_10K_S = 27.8
VIDUR_RECORDED_REQ_S = 360.0


def sglsim_args(num_requests: int, sampling: str) -> list[str]:
    return sglsim_command() + [
        "simulate", "--model", "llama-2-7b", "--gpu", "h100", "--tp", "1", "--chunked-prefill-size", "512",
        "--max-running-requests", "128", "--trace", str(VIDUR_CSV), "--trace-sampling", sampling,
        "--max-request-tokens", "4096", "--rate", "5", "--num-requests", str(num_requests),
        "--no-progress", "--quiet"]


def run_vidur(num_requests: int) -> tuple[float, float] | None:
    """Run Vidur via its anchor script; return (wall s, max RSS MiB) or None when not set up."""
    work = os.environ.get("VIDUR_WORK")
    script = SHARED / "anchors" / "vidur" / "run.sh"
    if not work or not (Path(work) / "venv").exists():
        return None
    tag = f"bench{num_requests}"
    # The first run of a configuration trains Vidur's regressors; time a second, cached run.
    subprocess.run(["bash", str(script), f"{tag}-warmup", str(num_requests), "5"], check=False,
                   env={**os.environ, "VIDUR_WORK": work})
    subprocess.run(["bash", str(script), tag, str(num_requests), "5"], check=False,
                   env={**os.environ, "VIDUR_WORK": work})
    log = (Path(work) / "logs" / f"{tag}.log").read_text()
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", log)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", log)
    if not wall or "rc=0" not in log:
        raise SystemExit(f"Vidur run failed; see {work}/logs/{tag}.log")
    parts = [float(p) for p in wall.group(1).split(":")]
    seconds = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
    return seconds, int(rss.group(1)) / 1024 if rss else float("nan")


def main() -> None:
    require(VIDUR_CSV)
    best10k, median10k = time_command(sglsim_args(10_000, "shuffle"))
    best100k, _ = time_command(sglsim_args(100_000, "with_replacement"), repeats=1)
    vidur = run_vidur(10_000)
    if vidur is None:
        vidur_10k, source = VIDUR_RECORDED_10K_S, "recorded on a 2-core machine (set VIDUR_WORK to rerun)"
    else:
        vidur_10k, source = vidur[0], f"measured now with its regressor cache warm, max RSS {vidur[1]:.0f} MiB"
    vidur_rate = 10_000 / vidur_10k if vidur is not None else VIDUR_RECORDED_REQ_S
    print(f"10,000 requests: sglsim best {best10k:.2f} s (median {median10k:.2f} s); "
          f"Vidur {vidur_10k:.1f} s ({source}); speed-up {vidur_10k / best10k:.1f}x (target >= 10x)")
    rate = 100_000 / best100k
    print(f"100,000 requests: sglsim {best100k:.2f} s whole command = {rate:,.0f} simulated requests/s; "
          f"Vidur about {vidur_rate:,.0f} requests/s; ratio {rate / vidur_rate:.1f}x (target >= 20x)")


if __name__ == "__main__":
    main()
