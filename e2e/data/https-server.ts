// A static file server over HTTPS for the data tests: serves a directory (what
// `upload --source file://DIR` writes) with a certificate from a throwaway CA, answers
// Range requests the way common servers do (206 with Content-Range, 416 past the end),
// and can misbehave on purpose: ignore ranges, or cut the connection after some bytes.
import { createReadStream, statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createServer } from "node:https";
import type { AddressInfo } from "node:net";
import { join, resolve, sep } from "node:path";
import { CertificateAuthority } from "../stack/certs.ts";

export interface FileServer {
  /** https://127.0.0.1:PORT/ */
  url: string;
  /** The CA that signed the server's certificate. */
  caFile: string;
  /** Every request: path and Range header. */
  requests: { path: string; range?: string }[];
  /** Misbehaviour switches, read on every request. */
  behave: { ranges: boolean; cutAfterBytes?: number };
  close(): Promise<void>;
}

export async function startFileServer(root: string, certDir: string): Promise<FileServer> {
  const ca = CertificateAuthority.create(certDir, "covenant-data-test-ca");
  const cert = ca.serving("data-server", ["127.0.0.1"], ["localhost"]);
  const requests: FileServer["requests"] = [];
  const behave: FileServer["behave"] = { ranges: true };
  const server = createServer(
    { cert: await readFile(cert.certFile), key: await readFile(cert.keyFile) },
    (req, res) => {
      const path = decodeURIComponent(new URL(req.url ?? "/", "https://x").pathname);
      requests.push({ path, ...(req.headers.range ? { range: req.headers.range } : {}) });
      const file = resolve(join(root, path));
      let size: number;
      try {
        if (!file.startsWith(resolve(root) + sep)) throw new Error("outside the root");
        const st = statSync(file);
        if (!st.isFile()) throw new Error("not a file");
        size = st.size;
      } catch {
        res.writeHead(404).end();
        return;
      }
      let start = 0;
      const range = behave.ranges ? /^bytes=(\d+)-$/.exec(req.headers.range ?? "") : null;
      if (range) {
        start = Number(range[1]);
        if (start >= size) {
          res.writeHead(416, { "content-range": `bytes */${size}` }).end();
          return;
        }
        res.writeHead(206, {
          "content-range": `bytes ${start}-${size - 1}/${size}`,
          "content-length": size - start,
        });
      } else {
        res.writeHead(200, { "content-length": size, "accept-ranges": behave.ranges ? "bytes" : "none" });
      }
      const cut = behave.cutAfterBytes;
      const body = createReadStream(file, { start, ...(cut !== undefined ? { end: start + cut - 1 } : {}) });
      // Cutting: send some bytes, then drop the connection as a failing link would.
      body.on("end", () => (cut !== undefined ? res.socket?.destroy() : res.end()));
      body.pipe(res, { end: false });
    },
  );
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `https://127.0.0.1:${port}/`,
    caFile: ca.certFile,
    requests,
    behave,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
