// The explorer page: reads the gateway's explorer API and renders it with plain DOM calls
// (text only through textContent: nothing from the network is parsed as HTML).

import type { Attestation, CallSeries, Hex, Overview, Pool, Program, Proposal, Receipt, Worker } from "./api";
import { api } from "./api";
import { callsChart, stakeChart } from "./charts";
import { checkReceipt, verifyAttestation } from "./verify";

type Child = Node | string | null | undefined;

function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

const $ = (id: string) => {
  const e = document.getElementById(id);
  if (!e) throw new Error(`#${id} missing from the page`);
  return e;
};

const short = (x: string, n = 10) => (x.length > n + 4 ? `${x.slice(0, n)}…${x.slice(-4)}` : x);
const code = (x: string, full = false) => h("code", { title: x }, full ? x : short(x));

/// PHA (18 decimals) from a decimal wei string, 2 decimals.
function pha(wei: string): string {
  const v = BigInt(wei);
  const whole = v / 10n ** 18n;
  const frac = (v % 10n ** 18n) / 10n ** 16n;
  return `${whole.toLocaleString("en-US")}.${frac.toString().padStart(2, "0")} PHA`;
}

function when(unix: number | null): string {
  return unix ? new Date(unix * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC" : "—";
}

function duration(seconds: number): string {
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7200) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 172_800) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86_400)}d`;
}

function table(head: string[], rows: HTMLTableRowElement[], empty: string): HTMLTableElement {
  const body = h("tbody");
  if (rows.length === 0) body.append(h("tr", { class: "empty" }, h("td", { colspan: String(head.length) }, empty)));
  else body.append(...rows);
  return h("table", {}, h("thead", {}, h("tr", {}, ...head.map((t) => h("th", {}, t)))), body);
}

function fail(section: string, e: unknown) {
  $(section).replaceChildren(h("p", { class: "error" }, `could not load: ${(e as Error).message}`));
}

// ------------------------------------------------------------------------- sections

let overview: Overview | null = null;

function renderOverview(o: Overview) {
  const card = (label: string, value: string, id: string) => h("div", { class: "card", id }, h("div", { class: "value" }, value), h("div", { class: "label" }, label));
  $("overview-cards").replaceChildren(
    card("chain id", String(o.chain_id), "ov-chain"),
    card("block", String(o.block), "ov-block"),
    card("workers active / healthy", `${o.workers.active} / ${o.workers.healthy}`, "ov-workers"),
    card("programs", String(o.programs), "ov-programs"),
    card("receipts stored", String(o.receipts), "ov-receipts"),
    card("stake", pha(o.total_stake), "ov-stake"),
  );
  const contracts = Object.entries(o.contracts).map(([n, a]) => h("li", {}, `${n} `, code(a, true)));
  $("overview-contracts").replaceChildren(
    h("p", {}, `gateway ${o.version} · RPC ${o.rpc_url} · KMS committee: `, ...o.kms_members.map((m) => code(m))),
    h("ul", { class: "contracts" }, ...contracts),
  );
}

function renderWorkers(workers: Worker[]) {
  const now = Date.now() / 1000;
  const rows = workers.map((w) => {
    const verdict = h("div", { class: "verdict", "data-state": "idle" });
    const button = h("button", { class: "verify", type: "button" }, "verify");
    button.addEventListener("click", () => void runVerify(w.address, button, verdict));
    const up = w.uptime;
    const uptime =
      up.checks === 0
        ? "—"
        : `${((100 * up.passed) / up.checks).toFixed(1)}% of ${up.checks} checks${up.up_since ? ` · up ${duration(Math.max(0, Math.round(now - up.up_since)))}` : ""}`;
    const status = w.revoked ? "revoked" : !w.registered ? "inactive" : w.healthy ? "healthy" : "unhealthy";
    return h(
      "tr",
      { "data-address": w.address.toLowerCase() },
      h("td", { class: "address" }, code(w.address, true)),
      h("td", { class: "platform" }, w.platform),
      h("td", { class: "measurement" }, code(w.measurement_hash)),
      h("td", { class: "tcb" }, w.tcb_status_name ?? (w.platform_id === 255 ? "n/a (simulated)" : "n/a")),
      h("td", { class: "registered" }, when(w.registered_at), h("br"), h("small", {}, `expires ${when(w.expiry)}`)),
      h("td", { class: "stake" }, pha(w.stake)),
      h("td", { class: "uptime" }, uptime),
      h("td", { class: `status ${status}` }, status),
      h("td", { class: "attestation" }, button, verdict),
    );
  });
  $("workers-table").replaceChildren(
    table(["worker", "platform", "measurement", "TCB", "registered", "operator stake", "uptime (this gateway)", "status", "attestation"], rows, "no workers known yet"),
  );
}

async function runVerify(address: Hex, button: HTMLButtonElement, out: HTMLElement) {
  button.disabled = true;
  out.dataset.state = "pending";
  delete out.dataset.verifiedBy;
  out.replaceChildren("verifying…");
  try {
    const att: Attestation = await api.attestation(address);
    const v = await verifyAttestation(att, overview?.rpc_url ?? "");
    out.dataset.state = v.ok ? "pass" : "fail";
    out.dataset.verifiedBy = v.verifiedBy;
    const label = v.verifiedBy === "browser" ? "verified in browser" : "verified by gateway";
    out.replaceChildren(
      h("strong", { class: "result" }, v.ok ? `✔ valid` : `✘ invalid`),
      " ",
      h("span", { class: `by ${v.verifiedBy}` }, label),
      h("ul", { class: "checks" }, ...v.checks.map((c) => h("li", { class: c.ok ? "ok" : "bad", "data-check": c.name }, `${c.ok ? "✔" : "✘"} ${c.name}: ${c.detail}`))),
    );
  } catch (e) {
    out.dataset.state = "fail";
    out.replaceChildren(h("strong", { class: "result" }, "✘ could not verify"), " ", (e as Error).message);
  } finally {
    button.disabled = false;
  }
}

function renderPrograms(total: number, programs: Program[]) {
  const rows = programs.map((p) =>
    h(
      "tr",
      { "data-id": p.id },
      h("td", { class: "id" }, p.id),
      h("td", { class: "code-hash" }, code(p.code_hash, true)),
      h("td", { class: "owner" }, code(p.owner)),
      h(
        "td",
        { class: "versions" },
        h("ol", {}, ...p.versions.map((v) => h("li", {}, `${v.kind} at block ${v.block}: `, code(v.code_hash)))),
      ),
      h("td", { class: "calls" }, String(p.calls)),
      h("td", { class: "deposit" }, pha(p.deposit)),
    ),
  );
  $("programs-table").replaceChildren(
    h("p", {}, `${total} program${total === 1 ? "" : "s"} on chain${programs.length < total ? ` (newest ${programs.length} shown)` : ""}`),
    table(["id", "code hash", "owner", "version history", "calls (receipts)", "deposit"], rows, "no programs yet"),
  );
}

async function runReceiptCheck(r: Receipt, button: HTMLButtonElement, out: HTMLElement) {
  if (!overview) return;
  button.disabled = true;
  out.dataset.state = "pending";
  out.replaceChildren("verifying…");
  try {
    const v = await checkReceipt(r, overview);
    out.dataset.state = v.ok ? "pass" : "fail";
    out.replaceChildren(
      h("strong", { class: "result" }, v.ok ? "✔ valid" : "✘ invalid"),
      " ",
      h("span", { class: "by browser" }, "verified in browser"),
      h("ul", { class: "checks" }, ...v.checks.map((c) => h("li", { class: c.ok ? "ok" : "bad", "data-check": c.name }, `${c.ok ? "✔" : "✘"} ${c.name}: ${c.detail}`))),
    );
  } catch (e) {
    out.dataset.state = "fail";
    out.replaceChildren(h("strong", { class: "result" }, "✘ could not verify"), " ", (e as Error).message);
  } finally {
    button.disabled = false;
  }
}

function renderReceipts(receipts: Receipt[]) {
  const rows = receipts.map((r) => {
    const verdict = h("div", { class: "verdict", "data-state": "idle" });
    const button = h("button", { class: "verify", type: "button" }, "verify");
    button.addEventListener("click", () => void runReceiptCheck(r, button, verdict));
    return h(
      "tr",
      { "data-request": r.requestHash },
      h("td", {}, when(r.timestamp)),
      h("td", {}, String(BigInt(r.programId))),
      h("td", {}, code(r.worker)),
      h("td", {}, code(r.requestHash)),
      h("td", {}, code(r.codeHash)),
      h("td", {}, `${(r.cpuMicros / 1000).toFixed(2)} ms cpu / ${(r.wallMicros / 1000).toFixed(2)} ms wall`),
      h("td", { class: "receipt-check" }, button, verdict),
    );
  });
  $("receipts-table").replaceChildren(table(["time", "program", "worker", "request hash", "code hash", "usage", "receipt"], rows, "no receipts stored yet"));
}

let series: { bucket: number; buckets: number } = { bucket: 10, buckets: 60 };

function renderCalls(s: CallSeries) {
  const total = s.counts.reduce((a, b) => a + b, 0);
  $("calls-chart").replaceChildren(
    callsChart(s.counts, s.start, s.bucket_seconds),
    h("p", { class: "caption", id: "calls-total" }, `${total} calls in the last ${duration(s.counts.length * s.bucket_seconds)} (receipts stored by this gateway)${s.truncated ? "; only the newest receipts were read" : ""}`),
  );
}

function renderPools(pools: Pool[]) {
  const rows = pools.map((p) =>
    h(
      "tr",
      { "data-operator": p.operator.toLowerCase() },
      h("td", {}, code(p.operator, true)),
      h("td", {}, pha(p.total_stake)),
      h("td", {}, pha(p.locked_stake)),
      h("td", {}, `${(p.commission_bps / 100).toFixed(2)}%`),
      h("td", {}, String(p.workers.length)),
    ),
  );
  $("pools-chart").replaceChildren(stakeChart(pools.map((p) => ({ label: short(p.operator, 8), stake: BigInt(p.total_stake) }))));
  $("pools-table").replaceChildren(table(["operator", "stake", "locked in workers", "commission", "workers"], rows, "no stake pools yet"));
}

function renderProposals(ps: Proposal[]) {
  const rows = ps.map((p) =>
    h(
      "tr",
      { "data-proposal": p.id },
      h("td", {}, short(p.id, 12)),
      h("td", {}, p.description),
      h("td", { class: `state ${p.state}` }, p.state),
      h("td", {}, `for ${pha(p.votes.for)} · against ${pha(p.votes.against)} · abstain ${pha(p.votes.abstain)}`),
      h("td", {}, `blocks ${p.vote_start}–${p.vote_end}`),
      h("td", {}, code(p.proposer)),
    ),
  );
  $("proposals-table").replaceChildren(table(["id", "description", "state", "votes", "voting", "proposer"], rows, "no proposals yet"));
}

// ------------------------------------------------------------------------- load

async function loadCalls() {
  await api.calls(series.bucket, series.buckets).then(renderCalls, (e) => fail("calls-chart", e));
}

async function load() {
  $("status").textContent = "loading…";
  await api.overview().then(
    (o) => {
      overview = o;
      renderOverview(o);
    },
    (e) => fail("overview-cards", e),
  );
  await Promise.all([
    api.workers().then(renderWorkers, (e) => fail("workers-table", e)),
    api.programs().then((p) => renderPrograms(p.total, p.programs), (e) => fail("programs-table", e)),
    api.receipts().then(renderReceipts, (e) => fail("receipts-table", e)),
    api.pools().then(renderPools, (e) => fail("pools-table", e)),
    api.proposals().then(renderProposals, (e) => fail("proposals-table", e)),
    loadCalls(),
  ]);
  $("status").textContent = `updated ${new Date().toISOString().slice(11, 19)} UTC`;
  document.body.dataset.loaded = "true";
}

function init() {
  $("refresh").addEventListener("click", () => void load());
  for (const b of document.querySelectorAll<HTMLButtonElement>("button[data-bucket]")) {
    b.addEventListener("click", () => {
      series = { bucket: Number(b.dataset.bucket), buckets: 60 };
      void loadCalls();
    });
  }
  void load();
}

init();
