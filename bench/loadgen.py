"""Fallback load generator (used when wrk is not installed): keep-alive requests for a fixed time.

Runs in its own process so it does not share a core's worth of GIL with the server.
Prints one JSON line: requests, seconds, latency percentiles in milliseconds, statuses.
"""

import argparse
import asyncio
import json
import time

import aiohttp


async def run(url: str, method: str, body: bytes | None, headers: dict, connections: int, duration: float) -> dict:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    deadline = time.perf_counter() + duration
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def worker() -> None:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                async with session.request(method, url, data=body, headers=headers) as resp:
                    await resp.read()
                latencies.append(time.perf_counter() - started)
                statuses[resp.status] = statuses.get(resp.status, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(len(latencies) * p))] * 1000 if latencies else 0.0

    return {"requests": len(latencies), "seconds": elapsed, "p50_ms": pct(0.50), "p99_ms": pct(0.99),
            "statuses": statuses}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--method", default="POST")
    parser.add_argument("--body", help="request body (none when left out)")
    parser.add_argument("--header", action="append", default=[])
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=float, default=5.0)
    args = parser.parse_args()
    headers = dict(h.split(":", 1) for h in args.header)
    headers = {k.strip(): v.strip() for k, v in headers.items()}
    body = args.body.encode() if args.body is not None else None
    print(json.dumps(asyncio.run(run(args.url, args.method, body, headers, args.connections, args.duration))))


if __name__ == "__main__":
    main()
