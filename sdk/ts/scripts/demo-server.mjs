// The demo server: serves the example app (examples/todo) and the browser
// bundle (dist/browser), and proxies /v1/* to a gateway, so the app and the
// API share an origin (the gateway sends no CORS headers). GET
// /demo/config.json hands the page a dev token. With bufferEvents the
// proxy holds back the event stream, as a misconfigured buffering proxy
// would (the SDK must fall back to long polling).
import { createServer, request } from "node:http";
import { readFile } from "node:fs/promises";
import { extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL("..", import.meta.url));
const types = { ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css", ".map": "application/json", ".json": "application/json" };

/**
 * startDemoServer listens on host:port (0: a free port) and resolves to
 * {url, close}.
 */
export function startDemoServer({ gatewayURL, token, host = "127.0.0.1", port = 0, bufferEvents = false }) {
  const gw = new URL(gatewayURL);
  const server = createServer(async (req, res) => {
    const url = new URL(req.url, "http://x");
    if (url.pathname.startsWith("/v1/") || url.pathname === "/healthz") {
      const up = request(
        { host: gw.hostname, port: gw.port, method: req.method, path: req.url, headers: { ...req.headers, host: gw.host } },
        (ur) => {
          res.writeHead(ur.statusCode ?? 502, ur.headers);
          if (bufferEvents && url.pathname === "/v1/events") {
            // A buffering proxy: nothing reaches the client until the
            // stream ends (it never does while the client waits).
            const chunks = [];
            ur.on("data", (c) => chunks.push(c));
            ur.on("end", () => res.end(Buffer.concat(chunks)));
          } else ur.pipe(res);
        },
      );
      up.on("error", () => {
        if (!res.headersSent) res.writeHead(502);
        res.end();
      });
      res.on("close", () => up.destroy());
      req.pipe(up);
      return;
    }
    if (url.pathname === "/demo/config.json") {
      res.writeHead(200, { "Content-Type": "application/json", "Cache-Control": "no-store" });
      res.end(JSON.stringify({ token }));
      return;
    }
    let path = url.pathname === "/" ? "/index.html" : url.pathname;
    let file;
    if (path.startsWith("/sdk/")) file = join(here, "dist/browser", normalize(path.slice(5)));
    else file = join(here, "examples/todo", normalize(path));
    if (!file.startsWith(here)) {
      res.writeHead(403).end();
      return;
    }
    try {
      const body = await readFile(file);
      res.writeHead(200, { "Content-Type": types[extname(file)] ?? "application/octet-stream", "Cache-Control": "no-cache" });
      res.end(body);
    } catch {
      res.writeHead(404).end("not found");
    }
  });
  return new Promise((resolve) => {
    server.listen(port, host, () => {
      const a = server.address();
      resolve({
        url: `http://${host}:${a.port}`,
        close: () =>
          new Promise((r) => {
            server.closeAllConnections();
            server.close(() => r());
          }),
      });
    });
  });
}
