"""
Author:  Cerebro team
Date:    2026-11-24
Subject: The benchmark baseline: a bare Tornado app calling the same model per request.
Tagline: The floor we measure ourselves against.

No validation, no executor, no metrics, no error mapping, no batching: decode
the body, call ``modules.rent_predictor.expose.predict`` with that one listing
on the IOLoop, encode the result. Run:
``python bench/bare_tornado.py --port P --processes N --volume DIR [--tuned]``.
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


async def _serve(sockets):
    """Serve forever on the given sockets."""
    server = HTTPServer(tornado.web.Application([(r"/v1/rent_predictor/predict", PredictHandler)]))
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
    expose.MODEL.refresh(args.volume)
    asyncio.run(_serve(sockets))


if __name__ == "__main__":
    main()
