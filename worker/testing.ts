// Test builders for the worker's unit tests.
import type { SignedSelection } from "../protocol/selection.ts";

/** A validator's selection of `round` for run "run" that aggregates nothing (signature not checked). */
export const emptySelection = (round: number, config?: string): SignedSelection => ({
  version: 1,
  run: "run",
  round,
  validator: "validator",
  epoch: 1,
  selected: [],
  reserves: [],
  rejected: {},
  signature: "0x",
  ...(config ? { config } : {}),
});
