// Two small hand-made SVG charts (no chart library): calls per time bucket, and stake per pool.

const SVG = "http://www.w3.org/2000/svg";

function el<K extends keyof SVGElementTagNameMap>(name: K, attrs: Record<string, string | number>, text?: string): SVGElementTagNameMap[K] {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

function clock(unix: number): string {
  return new Date(unix * 1000).toISOString().slice(11, 16);
}

/// Columns of `counts`, one per bucket of `bucketSeconds` starting at `start`.
export function callsChart(counts: number[], start: number, bucketSeconds: number): SVGSVGElement {
  const w = 720;
  const h = 160;
  const pad = { l: 36, r: 8, t: 8, b: 22 };
  const svg = el("svg", { viewBox: `0 0 ${w} ${h}`, class: "chart", role: "img" });
  const total = counts.reduce((a, b) => a + b, 0);
  svg.append(el("title", {}, `${total} calls in the last ${(counts.length * bucketSeconds) / 60} minutes`));
  const max = Math.max(1, ...counts);
  const iw = w - pad.l - pad.r;
  const ih = h - pad.t - pad.b;
  const bw = iw / Math.max(1, counts.length);
  svg.append(el("line", { x1: pad.l, y1: pad.t + ih, x2: w - pad.r, y2: pad.t + ih, class: "axis" }));
  svg.append(el("text", { x: pad.l - 4, y: pad.t + 10, class: "tick end" }, String(max)));
  svg.append(el("text", { x: pad.l - 4, y: pad.t + ih, class: "tick end" }, "0"));
  counts.forEach((c, i) => {
    const bh = (c / max) * ih;
    const bar = el("rect", { x: pad.l + i * bw + 1, y: pad.t + ih - bh, width: Math.max(1, bw - 2), height: bh, class: "bar" });
    bar.append(el("title", {}, `${clock(start + i * bucketSeconds)} UTC: ${c} call${c === 1 ? "" : "s"}`));
    svg.append(bar);
  });
  for (const i of [0, Math.floor(counts.length / 2), counts.length - 1]) {
    if (i < 0) continue;
    svg.append(el("text", { x: pad.l + i * bw + bw / 2, y: h - 6, class: "tick mid" }, clock(start + i * bucketSeconds)));
  }
  return svg;
}

/// One horizontal bar per pool, its share of all stake.
export function stakeChart(pools: { label: string; stake: bigint }[]): SVGSVGElement {
  const rowH = 24;
  const w = 720;
  const labelW = 140;
  const h = Math.max(1, pools.length) * rowH + 8;
  const svg = el("svg", { viewBox: `0 0 ${w} ${h}`, class: "chart", role: "img" });
  const total = pools.reduce((a, p) => a + p.stake, 0n);
  svg.append(el("title", {}, "stake distribution across pools"));
  if (pools.length === 0 || total === 0n) {
    svg.append(el("text", { x: 8, y: 18, class: "tick" }, "no stake yet"));
    return svg;
  }
  pools.forEach((p, i) => {
    const share = Number((p.stake * 10_000n) / total) / 10_000;
    const y = 4 + i * rowH;
    svg.append(el("text", { x: 0, y: y + 15, class: "tick" }, p.label));
    svg.append(el("rect", { x: labelW, y, width: Math.max(1, share * (w - labelW - 70)), height: rowH - 6, class: "bar" }));
    svg.append(el("text", { x: labelW + share * (w - labelW - 70) + 6, y: y + 15, class: "tick" }, `${(share * 100).toFixed(1)}%`));
  });
  return svg;
}
