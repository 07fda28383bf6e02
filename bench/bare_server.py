"""The baselines: a bare aiohttp handler that reads the body and returns a fixed 201.

    python bench/bare_server.py PORT [--loop uvloop|asyncio]

On uvloop (the default), as `mockserver serve` runs: the baseline the targets are judged
against. On asyncio's own loop it is a second row, to show what uvloop is worth.
"""

import argparse
import asyncio

from aiohttp import web


async def create(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(status=201, body=b'{"object_type":"WEBHOOK"}', content_type="application/json")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    args = parser.parse_args()
    if args.loop == "uvloop":
        import uvloop

        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    app = web.Application()
    app.router.add_post("/v1/webhooks", create)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, loop=loop,
                print=lambda *_: print("listening", flush=True))


if __name__ == "__main__":
    main()
