import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
// @ts-expect-error: plain ESM script without types
import { render } from "../scripts/abi.mjs";

test("src/abi.ts is generated from contracts/artifacts (npm run abi)", () => {
  assert.equal(readFileSync(join(import.meta.dirname, "../src/abi.ts"), "utf8"), render());
});
