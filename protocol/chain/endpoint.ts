/** Endpoint text safe to show in status, Events and logs: no user info, query or fragment. */
export function redactEndpoint(endpoint: string): string {
  try {
    const u = new URL(endpoint);
    return `${u.protocol}//${u.host}${u.pathname === "/" ? "" : u.pathname}`;
  } catch {
    return "<invalid endpoint>";
  }
}

export function validateEndpoint(endpoint: string): void {
  let u: URL;
  try {
    u = new URL(endpoint);
  } catch {
    throw new Error(
      `chain endpoint ${JSON.stringify(redactEndpoint(endpoint))} is not a URL; use ws://host:port or wss://host`,
    );
  }
  if (u.protocol !== "ws:" && u.protocol !== "wss:") {
    throw new Error(`chain endpoint must use ws:// or wss://, got ${u.protocol}//`);
  }
}
