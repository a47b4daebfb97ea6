"""Judge client throughput against the local scripted chat-completions server, and the cost of a cache hit.

    .venv/bin/python bench/judge_throughput.py [--requests 256] [--latency-ms 0,50]

Each request carries one real example photo as a bounded base64 JPEG, as the judge sends it. The server
answers after `latency` (a stand-in for model time); "overhead" is the client-observed latency minus that,
i.e. what our client, the openai package, HTTP and the local server add per request. The server runs in this
process on the same cores, so the figures are a lower bound of what the client costs, not a server benchmark.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image

from annotators.mllm.client import MLLMClient, MLLMConfig, prepare_image
from annotators.mllm.scripted_server import Reply, ScriptedServer

PHOTO = Path(__file__).resolve().parents[1] / "examples" / "photos" / "chelsea.png"
ANSWER = '{"score": [8, 7], "reasoning": "the edit follows the instruction"}'


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def run_level(url: str, concurrency: int, n: int, image: bytes, latency_s: float) -> dict[str, float]:
    # No cache: every request goes over HTTP, which is what this row measures.
    client = MLLMClient(
        MLLMConfig(base_url=url, model="bench", concurrency=concurrency, max_retries=0, timeout_s=30)
    )
    latencies: list[float] = []

    def one(i: int) -> None:
        start = time.perf_counter()
        answer = client.chat(f"Judge request {i}.", [image])
        latencies.append(time.perf_counter() - start)
        if not answer.ok:
            raise RuntimeError(f"request {i} failed: {answer.error}")

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(one, range(min(n, concurrency))))  # warm-up: connections opened, code paths loaded
        latencies.clear()
        start = time.perf_counter()
        list(pool.map(one, range(concurrency, concurrency + n)))
        wall = time.perf_counter() - start
    client.close()
    return {
        "rps": n / wall,
        "mean_ms": 1000 * statistics.mean(latencies),
        "overhead_ms": 1000 * (statistics.mean(latencies) - latency_s),
        "p95_ms": 1000 * sorted(latencies)[int(0.95 * len(latencies)) - 1],
    }


def cache_hit_cost(url: str, n: int, image: bytes) -> float:
    """Microseconds per request answered from a warm on-disk cache of n answers."""
    with tempfile.TemporaryDirectory() as cache_dir:
        client = MLLMClient(MLLMConfig(base_url=url, model="bench", concurrency=8, cache_dir=cache_dir))
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda i: client.chat(f"Judge request {i}.", [image]), range(n)))
        start = time.perf_counter()
        for i in range(n):
            assert client.chat(f"Judge request {i}.", [image]).cached
        per_hit = (time.perf_counter() - start) / n
        client.close()
    return 1e6 * per_hit


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=256)
    parser.add_argument("--latency-ms", default="0,50", help="Comma-separated server latencies to test.")
    args = parser.parse_args()
    photo = Image.open(PHOTO)
    start = time.perf_counter()
    image = prepare_image(photo)
    encode_ms = 1000 * (time.perf_counter() - start)

    print(f"date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(
        f"machine: nproc={subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()}, "
        f"{cpu_model()}, Python {platform.python_version()}"
    )
    print(
        f"image: {PHOTO.name} {photo.size[0]}x{photo.size[1]} -> {len(image) / 1024:.1f} KiB JPEG "
        f"(prepare_image {encode_ms:.1f} ms); {args.requests} requests per row\n"
    )
    print("| server latency | concurrency | requests/s | mean latency ms | overhead/request ms | p95 ms |")
    print("|---|---|---|---|---|---|")
    for latency_ms in (float(x) for x in args.latency_ms.split(",")):
        reply = Reply(text=ANSWER, delay_s=latency_ms / 1000)
        with ScriptedServer(lambda body, reply=reply: reply) as server:
            for concurrency in (1, 8, 32):
                r = run_level(server.url, concurrency, args.requests, image, latency_ms / 1000)
                print(
                    f"| {latency_ms:g} ms | {concurrency} | {r['rps']:.1f} | {r['mean_ms']:.2f} | "
                    f"{r['overhead_ms']:.2f} | {r['p95_ms']:.2f} |"
                )
    with ScriptedServer(lambda body: Reply(text=ANSWER)) as server:
        per_hit_us = cache_hit_cost(server.url, args.requests, image)
    print(f"\ncache hit (sha256 of the image, key, JSON file read): {per_hit_us:.0f} us per request")


if __name__ == "__main__":
    main()
