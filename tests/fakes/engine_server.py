"""A stand-in for `vllm serve` / `python -m sglang.launch_server`: the fake OpenAI upstream on the port
the supervisor chose (there is no GPU here).

It takes both servers' command lines, appends {"pid", "argv"} as a JSON line to $STANDIN_RECORD when it
starts, waits $STANDIN_DELAY seconds before it listens (a model loading), and checks the key $STANDIN_KEY.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.fakes import openai


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model", nargs="?")
    parser.add_argument("--model-path")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--served-model-name")
    parser.add_argument("--tensor-parallel-size", "--tp-size", dest="tp", type=int, default=1)
    _, unknown = parser.parse_known_args()
    args = parser.parse_args(sys.argv[1 : len(sys.argv) - len(unknown)] if unknown else sys.argv[1:])
    record = os.environ.get("STANDIN_RECORD")
    if record:
        with open(record, "a") as out:
            out.write(json.dumps({"pid": os.getpid(), "argv": sys.argv[1:]}) + "\n")
    time.sleep(float(os.environ.get("STANDIN_DELAY", "0")))
    app = openai.create(os.environ.get("STANDIN_KEY", "sk-upstream"))
    web.run_app(app, host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
