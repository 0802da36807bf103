"""The bare command the ``taxbridge repost`` command is measured against (benchmarks/repost.py
``--command``): a fresh interpreter posting the queued documents' create bodies from N threads
through one pooled ``httpx.Client``, and nothing else.

    python benchmarks/_bare_post.py BODIES.json URL ACCOUNT KEY CONCURRENCY
"""

from __future__ import annotations

import base64
import json
import sys
import threading

import httpx


def main() -> int:
    path, url, account, key, concurrency = sys.argv[1:6]
    threads = int(concurrency)
    with open(path, encoding="utf-8") as handle:
        left = [(body, include) for body, include in json.load(handle)][::-1]
    token = base64.b64encode(f"{account}:{key}".encode()).decode("ascii")
    headers = {
        "Authorization": f"Basic {token}",
        "Accept": "application/json",
        "Content-Type": "application/json",
    }
    limits = httpx.Limits(max_connections=threads, max_keepalive_connections=threads)
    taking = threading.Lock()
    with httpx.Client(base_url=url, headers=headers, limits=limits) as client:

        def post() -> None:
            while True:
                with taking:
                    if not left:
                        return
                    body, include = left.pop()
                client.post(
                    "/api/v2/transactions/create", params={"$include": include}, content=body
                ).raise_for_status()

        workers = [threading.Thread(target=post) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
