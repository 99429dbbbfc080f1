/**
 * Label selectors: parse the string form the API server accepts and match labels locally.
 * Supported: `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`.
 */

export type Requirement =
  | { key: string; op: "In" | "NotIn"; values: string[] }
  | { key: string; op: "Exists" | "DoesNotExist" };

/** The structured form used by Kubernetes objects (`matchLabels` + `matchExpressions`). */
export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}

export function parseSelector(input: string | LabelSelector | Record<string, string>): Requirement[] {
  if (typeof input === "string") return parseSelectorString(input);
  if (isStructured(input)) {
    const out: Requirement[] = Object.entries(input.matchLabels ?? {}).map(([key, v]) => ({
      key,
      op: "In" as const,
      values: [v],
    }));
    for (const e of input.matchExpressions ?? []) {
      if (e.operator === "In" || e.operator === "NotIn") {
        out.push({ key: e.key, op: e.operator, values: e.values ?? [] });
      } else if (e.operator === "Exists" || e.operator === "DoesNotExist") {
        out.push({ key: e.key, op: e.operator });
      } else {
        throw new Error(`label selector: unknown operator "${e.operator}" for key "${e.key}"`);
      }
    }
    return out;
  }
  return Object.entries(input).map(([key, v]) => ({ key, op: "In" as const, values: [v] }));
}

function isStructured(x: LabelSelector | Record<string, string>): x is LabelSelector {
  return (
    (typeof x.matchLabels === "object" && x.matchLabels !== null) ||
    (Array.isArray(x.matchExpressions) && x.matchExpressions !== null)
  );
}

/** Splits at commas outside parentheses. */
function splitTerms(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = "";
  for (const ch of s) {
    if (ch === "(") depth++;
    if (ch === ")") depth--;
    if (ch === "," && depth === 0) {
      out.push(cur);
      cur = "";
    } else cur += ch;
  }
  out.push(cur);
  return out.map((t) => t.trim()).filter((t) => t !== "");
}

export function parseSelectorString(s: string): Requirement[] {
  return splitTerms(s).map((term) => {
    let m = /^([^\s!=,()]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(term);
    if (m) {
      const values = m[3]!
        .split(",")
        .map((v) => v.trim())
        .filter((v) => v !== "");
      return { key: m[1]!, op: m[2] === "in" ? ("In" as const) : ("NotIn" as const), values };
    }
    m = /^([^\s!=,()]+)\s*(==|=|!=)\s*([^\s!=,()]*)$/.exec(term);
    if (m) return { key: m[1]!, op: m[2] === "!=" ? ("NotIn" as const) : ("In" as const), values: [m[3]!] };
    m = /^!\s*([^\s!=,()]+)$/.exec(term);
    if (m) return { key: m[1]!, op: "DoesNotExist" as const };
    m = /^([^\s!=,()]+)$/.exec(term);
    if (m) return { key: m[1]!, op: "Exists" as const };
    throw new Error(`label selector: cannot parse "${term}"`);
  });
}

export function matchesSelector(reqs: Requirement[], labels: Record<string, string>): boolean {
  return reqs.every((r) => {
    const has = Object.prototype.hasOwnProperty.call(labels, r.key);
    switch (r.op) {
      case "Exists":
        return has;
      case "DoesNotExist":
        return !has;
      case "In":
        return has && r.values.includes(labels[r.key]!);
      case "NotIn":
        return !has || !r.values.includes(labels[r.key]!);
    }
  });
}
