"""The baseline: a bare aiohttp handler that reads the body and returns a fixed 201."""

import sys

from aiohttp import web


async def create(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(status=201, body=b'{"object_type":"WEBHOOK"}', content_type="application/json")


def main() -> None:
    app = web.Application()
    app.router.add_post("/v1/webhooks", create)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None,
                print=lambda *_: print("listening", flush=True))


if __name__ == "__main__":
    main()
