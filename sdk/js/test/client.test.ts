import assert from "node:assert/strict";
import { test } from "node:test";
import { boundModelHash, modelCheck, programIdHex, workerReportData } from "../src/client.ts";
import { toHex } from "../src/bytes.ts";
import { PithError } from "../src/errors.ts";

test("program ids: decimal, hex, bigint; garbage and out of range refused", () => {
  assert.equal(programIdHex(1), `0x${"0".repeat(63)}1`);
  assert.equal(programIdHex("0x0102"), `0x${"0".repeat(60)}0102`);
  assert.equal(programIdHex("7"), programIdHex(7n));
  for (const bad of ["", "x", "1.5", "-1", "0x", `0x${"1".repeat(65)}`]) assert.throws(() => programIdHex(bad), PithError, bad);
  assert.throws(() => programIdHex(1n << 256n), PithError);
});

test("worker report_data binding: every input changes it", () => {
  const w = "0x39ee1481cd4aea626d12ecfdaa4afc9a0534f910" as const;
  const r = "0x9fe46736679d2d9a65f0992f2272de9f3c7fa6e0" as const;
  const enc = new Uint8Array(32).fill(1);
  const base = toHex(workerReportData(w, enc, 31337, r));
  assert.equal(base.length, 66);
  assert.notEqual(toHex(workerReportData(w, new Uint8Array(32).fill(2), 31337, r)), base);
  assert.notEqual(toHex(workerReportData(w, enc, 1, r)), base);
  assert.notEqual(toHex(workerReportData(r, enc, 31337, r)), base);
  assert.notEqual(toHex(workerReportData(w, enc, 31337, w)), base);
});

test("model binding: report_data[32..64] names the model; a receipt's modelHash must match it", () => {
  const id = `0x${"11".repeat(32)}` as const;
  const none = `${id}${"00".repeat(32)}` as const;
  const m6 = `0x${"06".repeat(32)}` as const;
  const withModel = `${id}${"06".repeat(32)}` as const;
  const zero = `0x${"00".repeat(32)}` as const;
  assert.equal(boundModelHash(none), null);
  assert.equal(boundModelHash(withModel), m6);
  assert.equal(modelCheck(none, zero), null); // no model named: nothing to check
  assert.equal(modelCheck(withModel, zero), null); // a model-serving worker answering without the model
  assert.equal(modelCheck(withModel, m6)?.ok, true);
  assert.equal(modelCheck(withModel, `0x${"07".repeat(32)}`)?.ok, false);
  assert.equal(modelCheck(none, m6)?.ok, false);
});
