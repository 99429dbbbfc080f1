/**
 * A CovenantPeer's hotkey address: from its status (the chain bridge writes it) or derived
 * from its hotkey Secret. A derivation is remembered for a minute, and past that by the
 * Secret's resourceVersion, so a Secret is read about once a minute per peer, not once per
 * reconcile. Only the SS58 address is kept; the secret bytes are never logged.
 */
import type { KubernetesObject } from "@kubernetes/client-node";
import type { CovenantPeer } from "../../api/index.ts";
import { hotkeyAddress } from "../../protocol/chain/hotkey.ts";
import type { KubeClient } from "../kube/client.ts";
import { CORE } from "../kube/keys.ts";

interface SecretObject extends KubernetesObject {
  data?: Record<string, string>;
}

export class HotkeyResolver {
  readonly #known = new Map<
    string,
    { version: string | undefined; address: string | undefined; checkedAt: number }
  >();

  constructor(
    private readonly client: KubeClient,
    private readonly recheckMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  async of(peer: CovenantPeer): Promise<string | undefined> {
    if (peer.status?.hotkey) return peer.status.hotkey;
    const ref = peer.spec.hotkeySecretRef;
    const ns = peer.metadata.namespace ?? "default";
    const key = `${ns}/${ref.name}/${ref.key ?? "hotkey"}`;
    const recent = this.#known.get(key);
    if (recent && this.now() - recent.checkedAt < this.recheckMs) return recent.address;
    const secret = await this.client.getOrUndefined<SecretObject>(CORE.secrets, ns, ref.name);
    const version = secret?.metadata?.resourceVersion;
    if (recent && recent.version === version) {
      recent.checkedAt = this.now();
      return recent.address;
    }
    const value = secret?.data?.[ref.key ?? "hotkey"];
    let address: string | undefined;
    if (value) {
      try {
        address = await hotkeyAddress(Buffer.from(value, "base64"));
      } catch {
        address = undefined;
      }
    }
    this.#known.set(key, { version, address, checkedAt: this.now() });
    return address;
  }
}
