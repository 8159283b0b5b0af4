"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Benchmark baselines: a bare Tornado app calling the model per request; hello world.
Tagline: The floor we measure ourselves against.

No validation, no executor, no metrics, no error mapping, no batching: decode
the body, call ``modules.rent_predictor.expose.predict`` with that one listing
on the IOLoop, encode the result. With ``--hello`` it calls no model at all: the
same route answers a constant JSON document, the HTTP ceiling of Tornado on the
box. Run:
``python bench/bare_tornado.py --port P --processes N --volume DIR [--tuned] [--hello]``.
"""

import argparse
import asyncio
import json
import os

import tornado.web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.process import fork_processes

from modules.rent_predictor import expose


class PredictHandler(tornado.web.RequestHandler):
    """POST /v1/rent_predictor/predict, the bare way."""

    def post(self):
        """Predict and answer."""
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(expose.predict([json.loads(self.request.body)])[0]))


class HelloHandler(tornado.web.RequestHandler):
    """POST /v1/rent_predictor/predict answered without a model: Tornado's ceiling."""

    def post(self):
        """Answer a constant document."""
        self.set_header("Content-Type", "application/json")
        self.finish(b'{"hello":"world"}')


async def _serve(sockets, handler):
    """Serve forever on the given sockets."""
    server = HTTPServer(tornado.web.Application([(r"/v1/rent_predictor/predict", handler)]))
    server.add_sockets(sockets)
    await asyncio.Event().wait()


def main():
    """Parse arguments, load the model, fork and serve."""
    parser = argparse.ArgumentParser(description="bare Tornado baseline",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--port", type=int, required=True, help="port to listen on")
    parser.add_argument("--processes", type=int, default=2, help="processes")
    parser.add_argument("--volume", required=True, help="data volume with rent_predictor built")
    parser.add_argument("--tuned", action="store_true",
                        help="as `cerebro serve` runs by default: process i pinned to CPU i, "
                             "each process on its own SO_REUSEPORT socket")
    parser.add_argument("--hello", action="store_true",
                        help="hello world: answer a constant document, call no model")
    args = parser.parse_args()
    if args.tuned and args.processes > 1:
        index = fork_processes(args.processes)
        sockets = bind_sockets(args.port, "127.0.0.1", reuse_port=True)
    else:
        sockets = bind_sockets(args.port, "127.0.0.1")
        index = fork_processes(args.processes) if args.processes > 1 else 0
    if args.tuned:
        cpus = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpus[index % len(cpus)]})
    if args.hello:
        asyncio.run(_serve(sockets, HelloHandler))
        return
    expose.MODEL.refresh(args.volume)
    asyncio.run(_serve(sockets, PredictHandler))


if __name__ == "__main__":
    main()
