// etcd's v3 JSON gateway, for tests that compact storage so that old resourceVersions expire.
import { request } from "node:http";

function post(url: string, body: unknown): Promise<Record<string, unknown>> {
  const payload = Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: "POST", headers: { "Content-Type": "application/json", "Content-Length": payload.length } },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (text += c));
        res.on("end", () => {
          if ((res.statusCode ?? 0) !== 200)
            return reject(new Error(`POST ${url}: ${res.statusCode} ${text}`));
          resolve(JSON.parse(text) as Record<string, unknown>);
        });
      },
    );
    req.on("error", reject);
    req.end(payload);
  });
}

/** The current store revision. */
export async function etcdRevision(etcdUrl: string): Promise<number> {
  const out = await post(`${etcdUrl}/v3/kv/range`, { key: Buffer.from("/").toString("base64") });
  return Number((out.header as { revision: string }).revision);
}

/** Compacts history up to the current revision: every older resourceVersion expires (410 Gone). */
export async function compactEtcd(etcdUrl: string): Promise<number> {
  const revision = await etcdRevision(etcdUrl);
  await post(`${etcdUrl}/v3/kv/compaction`, { revision: String(revision), physical: true });
  return revision;
}
