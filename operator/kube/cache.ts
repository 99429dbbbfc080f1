/**
 * The informer cache: objects by key `namespace/name`, indexed by namespace, by owner UID
 * and queryable by label selector. Reads return the stored objects; treat them as
 * read-only (copy before changing).
 */
import type { KubernetesObject } from "@kubernetes/client-node";
import { keyOf, objectKey } from "./keys.ts";
import { matchesSelector, parseSelector, type LabelSelector } from "./selector.ts";

export class Store<T extends KubernetesObject> {
  private readonly items = new Map<string, T>();
  private readonly byNs = new Map<string, Set<string>>();
  private readonly byOwnerUid = new Map<string, Set<string>>();

  get size(): number {
    return this.items.size;
  }

  /** By key `namespace/name` (or `name` for cluster-scoped objects). */
  get(key: string): T | undefined {
    return this.items.get(key);
  }

  getByName(namespace: string | undefined, name: string): T | undefined {
    return this.items.get(objectKey(namespace, name));
  }

  keys(): string[] {
    return [...this.items.keys()];
  }

  /** Every object, or those of one namespace. */
  list(namespace?: string): T[] {
    if (namespace === undefined) return [...this.items.values()];
    return this.collect(this.byNs.get(namespace));
  }

  /** Objects with an owner reference to `ownerUid`. */
  listByOwner(ownerUid: string): T[] {
    return this.collect(this.byOwnerUid.get(ownerUid));
  }

  /** Objects matching a label selector (string form `a=b,c!=d,e in (x,y),!f`, or a LabelSelector). */
  listByLabels(selector: string | LabelSelector | Record<string, string>, namespace?: string): T[] {
    const sel = parseSelector(selector);
    return this.list(namespace).filter((o) => matchesSelector(sel, o.metadata?.labels ?? {}));
  }

  /** Inserts or replaces; answers the previous object. */
  upsert(obj: T): T | undefined {
    const key = keyOf(obj);
    const old = this.items.get(key);
    if (old) this.unindex(key, old);
    this.items.set(key, obj);
    this.index(key, obj);
    return old;
  }

  /** Removes; answers the removed object. */
  remove(key: string): T | undefined {
    const old = this.items.get(key);
    if (!old) return undefined;
    this.unindex(key, old);
    this.items.delete(key);
    return old;
  }

  private collect(keys: Set<string> | undefined): T[] {
    if (!keys) return [];
    const out: T[] = [];
    for (const k of keys) {
      const o = this.items.get(k);
      if (o) out.push(o);
    }
    return out;
  }

  private index(key: string, obj: T): void {
    add(this.byNs, obj.metadata?.namespace ?? "", key);
    for (const ref of obj.metadata?.ownerReferences ?? []) add(this.byOwnerUid, ref.uid, key);
  }

  private unindex(key: string, obj: T): void {
    del(this.byNs, obj.metadata?.namespace ?? "", key);
    for (const ref of obj.metadata?.ownerReferences ?? []) del(this.byOwnerUid, ref.uid, key);
  }
}

function add(m: Map<string, Set<string>>, k: string, v: string): void {
  let s = m.get(k);
  if (!s) m.set(k, (s = new Set()));
  s.add(v);
}

function del(m: Map<string, Set<string>>, k: string, v: string): void {
  const s = m.get(k);
  if (!s) return;
  s.delete(v);
  if (s.size === 0) m.delete(k);
}
