"""GraphiQL, served by the gateway itself: no CDN, works with no internet access.

The JavaScript and CSS come from the npm registry at set-up (``make setup`` installs
``playground/package.json`` into ``build/playground``); nothing of them is committed. GraphiQL 3
and React 18 are pinned: the last versions with UMD builds a plain page can load. GraphiQL's
bundle carries the graphql-ws client: subscriptions run over a WebSocket to the page's origin.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from gateway.errors import ErrorCode

__all__ = ["DEFAULT_ASSETS", "Playground"]

DEFAULT_ASSETS = Path(__file__).resolve().parents[2] / "build" / "playground" / "node_modules"

# URL name → file under node_modules: a fixed list, so no path from a URL reaches the disk.
ASSETS = {
    "react.js": "react/umd/react.production.min.js",
    "react-dom.js": "react-dom/umd/react-dom.production.min.js",
    "graphiql.js": "graphiql/graphiql.min.js",
    "graphiql.css": "graphiql/graphiql.min.css",
}
PREFIX = "/playground/"

DEFAULT_QUERY = """\
# One GraphQL API over four product catalogues (CareCloud, Joptic, Axim, Comestri).
# Groups of every source whose name mentions "office", merged by name, each with its first
# products (a nested connection; Joptic groups have none). Run it with the ▶ button, then try
# `after: "<endCursor>"`, another `search`, or `node(id: "<an id>")`.
query Tour {
  sources { id kind }
  productGroups(first: 6, orderBy: {field: NAME}, filter: {search: "office"}) {
    totalCount
    pageInfo { hasNextPage endCursor }
    nodes {
      id
      name
      source { id }
      products(first: 2) {
        totalCount
        pageInfo { hasNextPage endCursor }
        nodes { name sku price }
      }
    }
  }
}
"""

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Catalogue gateway · GraphiQL</title>
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <link rel="icon" href="data:,">
  <link rel="stylesheet" href="{prefix}graphiql.css">
  <style>body {{ margin: 0; height: 100vh; }} #graphiql {{ height: 100vh; }}</style>
</head>
<body>
  <div id="graphiql">Loading the playground…</div>
  <script src="{prefix}react.js"></script>
  <script src="{prefix}react-dom.js"></script>
  <script src="{prefix}graphiql.js"></script>
  <script>
    // Subscriptions over a WebSocket to this page's own origin (graphql-transport-ws; the
    // client is in GraphiQL's bundle); the headers tab's headers go in connection_init.
    const subscriptionUrl = new URL({endpoint}, location.href);
    subscriptionUrl.protocol = subscriptionUrl.protocol === "https:" ? "wss:" : "ws:";
    const fetcher = GraphiQL.createFetcher({{
      url: {endpoint}, subscriptionUrl: subscriptionUrl.href,
    }});
    const root = ReactDOM.createRoot(document.getElementById("graphiql"));
    root.render(React.createElement(GraphiQL, {{
      fetcher, defaultQuery: {query}, defaultEditorToolsVisibility: true,
    }}));
  </script>
</body>
</html>
"""


class Playground:
    """The GraphiQL page for ``/graphql`` and the routes of its assets."""

    def __init__(self, assets: Path = DEFAULT_ASSETS, *, endpoint: str = "/graphql") -> None:
        self.assets = assets
        self.endpoint = endpoint

    def installed(self) -> bool:
        return all((self.assets / path).is_file() for path in ASSETS.values())

    def page(self) -> Response:
        if not self.installed():
            return JSONResponse({"errors": [{
                "message": "the playground's files are not installed: run `make setup` in a "
                           "source tree, or point [server] playground_assets at a directory "
                           "holding them (GraphiQL's node_modules)",
                "extensions": {"code": ErrorCode.PLAYGROUND_NOT_INSTALLED.value}}]},
                status_code=503)
        text = PAGE.format(prefix=PREFIX, endpoint=json.dumps(self.endpoint),
                           query=json.dumps(DEFAULT_QUERY).replace("</", "<\\/"))
        return HTMLResponse(text, headers={"Cache-Control": "no-cache"})

    async def asset(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in ASSETS or not (self.assets / ASSETS[name]).is_file():
            message = f"no playground asset {html.escape(name)}"
            return JSONResponse({"errors": [{"message": message}]}, status_code=404)
        return FileResponse(self.assets / ASSETS[name],
                            headers={"Cache-Control": "public, max-age=86400"})

    def routes(self) -> list[Route]:
        return [Route(PREFIX + "{name}", self.asset, methods=["GET"])]
