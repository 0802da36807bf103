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


def post_all(client: httpx.Client, bodies: list[tuple[str | bytes, str]], threads: int) -> None:
    """Post every create body from ``threads`` threads through ``client``, nothing else: the
    bare HTTP work a repost does (the in-process loop of benchmarks/repost.py runs it too)."""
    left = list(reversed(bodies))
    taking = threading.Lock()

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


def main() -> int:
    path, url, account, key, concurrency = sys.argv[1:6]
    threads = int(concurrency)
    with open(path, encoding="utf-8") as handle:
        bodies = [(body, include) for body, include in json.load(handle)]
    token = base64.b64encode(f"{account}:{key}".encode()).decode("ascii")
    headers = {
        "Authorization": f"Basic {token}",
        "Accept": "application/json",
        "Content-Type": "application/json",
    }
    limits = httpx.Limits(max_connections=threads, max_keepalive_connections=threads)
    with httpx.Client(base_url=url, headers=headers, limits=limits) as client:
        post_all(client, bodies, threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
