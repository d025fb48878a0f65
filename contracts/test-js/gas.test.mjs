// Gas goals of issue 4 (bench/RESULTS.md "contracts: gas"), measured on anvil. Gas is
// deterministic for a given chain state, so these are exact checks, not timings.
import { test } from "node:test";
import assert from "node:assert/strict";
import { measure, goals } from "./gas.mjs";

test("gas goals", async () => {
  const m = await measure();
  for (const [k, goal] of Object.entries(goals)) {
    assert.ok(m[k] <= goal, `${k}: ${m[k]} > ${goal}`);
  }
  // The evidence travels in calldata: its bytes must be what makes the 5 KB registration dearer.
  assert.ok(m.register5k > m.registerNoEvidence + BigInt(m.evidenceCalldata5k) / 2n);
});
