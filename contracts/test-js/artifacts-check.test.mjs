// The stale-artifact check of scripts/compile.mjs --check must notice any difference.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { diff } from "../scripts/compile.mjs";
import { root } from "./lib.mjs";

function copyArtifacts() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pith-art-"));
  for (const f of fs.readdirSync(path.join(root, "artifacts"))) {
    fs.copyFileSync(path.join(root, "artifacts", f), path.join(dir, f));
  }
  return dir;
}

test("identical artifacts pass", () => {
  const dir = copyArtifacts();
  assert.deepEqual(diff(dir, path.join(root, "artifacts")), []);
  fs.rmSync(dir, { recursive: true });
});

test("a changed byte, a missing and an extra artifact are all reported", () => {
  const dir = copyArtifacts();
  const p = path.join(dir, "Registry.json");
  const a = JSON.parse(fs.readFileSync(p, "utf8"));
  a.deployedBytecode = a.deployedBytecode.slice(0, -2) + (a.deployedBytecode.endsWith("00") ? "01" : "00");
  fs.writeFileSync(p, JSON.stringify(a, null, 2) + "\n");
  fs.rmSync(path.join(dir, "PHA.json"));
  fs.writeFileSync(path.join(dir, "Extra.json"), "{}\n");
  assert.deepEqual(diff(dir, path.join(root, "artifacts")).sort(), ["Extra.json", "PHA.json", "Registry.json"]);
  fs.rmSync(dir, { recursive: true });
});
