/**
 * The hotkeys registered on each run's subnet, as its chain bridge last read them. The
 * chain controller feeds it (one metagraph per new head); the transport controller reads it
 * and is told when a run's set of hotkeys or validator permits changes, so the run's bus is
 * re-planned only on a change of membership, not at every block.
 */

export interface SubnetNeuron {
  hotkey: string;
  validatorPermit: boolean;
}

export interface SubnetView {
  netuid: number;
  block: number;
  neurons: readonly SubnetNeuron[];
}

/** Identity of a view for change detection: who is registered and who holds a permit. */
export function membershipKey(neurons: readonly SubnetNeuron[]): string {
  return neurons
    .map((n) => `${n.hotkey}${n.validatorPermit ? "+" : ""}`)
    .sort()
    .join(",");
}

export class SubnetDirectory {
  readonly #views = new Map<string, { view: SubnetView; key: string }>();
  readonly #listeners = new Set<(run: string) => void>();

  /** The latest view of run `<namespace>/<name>`; undefined while unknown. */
  get(run: string): SubnetView | undefined {
    return this.#views.get(run)?.view;
  }

  /** Records a view (undefined: the run's bridge stopped); listeners hear of membership changes only. */
  set(run: string, view: SubnetView | undefined): void {
    const old = this.#views.get(run);
    if (!view) {
      this.#views.delete(run);
      if (old) this.#notify(run);
      return;
    }
    const key = `${view.netuid}|${membershipKey(view.neurons)}`;
    this.#views.set(run, { view, key });
    if (old?.key !== key) this.#notify(run);
  }

  onChange(listener: (run: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #notify(run: string): void {
    for (const l of this.#listeners) l(run);
  }
}
