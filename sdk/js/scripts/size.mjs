// The browser build of the SDK and its size: esbuild, ESM, minified, for browsers; written
// to dist/browser/ and measured gzipped (zlib level 9). Prints one table for bench/RESULTS.md.
//   npm run size
// Rows: the SDK with viem left external (the goal: < 100 KB gzipped; hpke-js and the @noble
// libraries are inside, even though viem would share @noble with it), the same with viem
// bundled (what a page that has no viem yet pays), the evidence verifier alone, and the Intel
// SGX/TDX verifier (`@pith/sdk/evidence-intel`, with @phala/dcap-qvl), which index does not include.
import { build } from "esbuild";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const outDir = join(root, "dist/browser");
mkdirSync(outDir, { recursive: true });

const variants = [
  { name: "index (viem external)", entry: "src/index.ts", out: "pith-sdk.js", external: ["viem", "viem/*"] },
  { name: "index + viem", entry: "src/index.ts", out: "pith-sdk.bundle.js", external: [] },
  { name: "evidence only", entry: "src/evidence.ts", out: "pith-evidence.js", external: [] },
  { name: "evidence-intel (dcap-qvl)", entry: "src/evidence-intel.ts", out: "pith-evidence-intel.js", external: [] },
];

const rows = [];
for (const v of variants) {
  const r = await build({
    entryPoints: [join(root, v.entry)],
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    minify: true,
    treeShaking: true,
    external: v.external,
    write: false,
    metafile: true,
    legalComments: "none",
  });
  const code = r.outputFiles[0].contents;
  writeFileSync(join(outDir, v.out), code);
  const gz = gzipSync(code, { level: 9 }).length;
  const inputs = Object.keys(r.metafile.inputs);
  rows.push({ name: v.name, bytes: code.length, gzip: gz, files: inputs.length });
  // The Intel verifier (dcap-qvl) must stay out of the other entry points.
  if (!v.entry.endsWith("evidence-intel.ts") && inputs.some((f) => f.includes("dcap-qvl") || f.includes("evidence-intel"))) {
    console.error(`${v.name}: includes the Intel verifier (dcap-qvl)`);
    process.exitCode = 1;
  }
}

const kb = (n) => (n / 1024).toFixed(1);
console.log("| build | minified | gzipped | input files |");
console.log("|---|---:|---:|---:|");
for (const r of rows) console.log(`| ${r.name} | ${kb(r.bytes)} KiB | ${kb(r.gzip)} KiB | ${r.files} |`);
const sdk = rows[0];
const goal = 100 * 1024;
console.log(`\nSDK without viem: ${kb(sdk.gzip)} KiB gzipped = ${(sdk.gzip / goal).toFixed(2)} × the 100 KiB goal`);
if (sdk.gzip > goal) process.exitCode = 1;
