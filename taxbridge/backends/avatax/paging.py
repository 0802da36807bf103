"""AvaTax's paged list calls (``FetchResult``: ``value``, ``@recordsetCount``, ``@nextLink``),
followed to the last page: a listing the engine reconciliation acts on must be whole."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx

from taxbridge.backends.avatax import mapping
from taxbridge.errors import MalformedResponse

Fetch = Callable[[str, dict[str, str]], Any]
"""One GET of a path with its query, answered as parsed JSON (retries are the caller's)."""


def pages(
    fetch: Fetch,
    path: str,
    model: str,
    params: Mapping[str, str],
    page: int = 1000,
    *,
    base: str,
    backend: str,
) -> Iterator[list[Mapping[str, Any]]]:
    """The pages of a list call, to the last: asked ``page`` rows at a time, and followed by
    the answer's ``@nextLink`` while it gives one, since a server may page by fewer rows than
    asked. Without a link the listing goes on while ``@recordsetCount`` says rows are left (or,
    with no count either, while a page came back full). A listing that ends with fewer rows than
    its count, a page linking to itself, or a link off the server at ``base`` is a
    MalformedResponse: a partial listing is never taken for a whole one."""
    query: dict[str, str] = {**params, "$top": str(page), "$skip": "0"}
    where, seen, count = path, 0, None
    while True:
        data = fetch(where, query)
        values = mapping.fetch_values(data, backend=backend, model=model)
        seen += len(values)
        yield values
        total = data.get("@recordsetCount")
        count = total if isinstance(total, int) and not isinstance(total, bool) else count
        if count is not None and seen > count:
            raise MalformedResponse(
                f"the {model} listing gave {seen} rows of its {count}", backend=backend
            )
        link = data.get("@nextLink")
        if isinstance(link, str) and link.strip():
            following = next_page(link, model, base=base, backend=backend)
            if not values or following == (where, query):
                raise MalformedResponse(
                    f"a {model} page links to itself or follows an empty one", backend=backend
                )
            where, query = following
        elif (count is not None and seen < count and values) or (
            count is None and len(values) >= int(query.get("$top") or page)
        ):
            query = {**query, "$skip": str(seen)}
        else:
            break
    if count is not None and seen < count:
        raise MalformedResponse(
            f"the {model} listing ended after {seen} of its {count} rows", backend=backend
        )


def next_page(link: str, model: str, *, base: str, backend: str) -> tuple[str, dict[str, str]]:
    """The path and query of an ``@nextLink`` (absolute or relative), which must stay on the
    server at ``base``: the credentials are never sent anywhere else."""
    url = httpx.URL(link.strip())
    home = httpx.URL(base)
    if url.is_absolute_url and (url.scheme, url.host, url.port) != (
        home.scheme,
        home.host,
        home.port,
    ):
        raise MalformedResponse(
            f"the {model} listing links to another server ({url.scheme}://{url.host})",
            backend=backend,
        )
    path = url.raw_path.decode("ascii").split("?", 1)[0]
    prefix = home.raw_path.decode("ascii").rstrip("/")
    if prefix and path.startswith(prefix + "/"):
        path = path[len(prefix) :]
    return path, dict(url.params)
