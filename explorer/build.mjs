// Build the explorer into dist/ (index.html, app.js, app.css), which the gateway embeds with
// include_bytes! (crates/gateway/src/explorer.rs). `--check` builds in memory and fails when
// the committed dist/ differs from a fresh build (run by scripts/test.d/explorer).
import { build } from "esbuild";
import { readFile, writeFile, mkdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const check = process.argv.includes("--check");

const js = await build({
  entryPoints: [join(here, "src/main.ts")],
  bundle: true,
  format: "esm",
  target: ["es2022"],
  platform: "browser",
  minify: true,
  legalComments: "none",
  charset: "utf8",
  write: false,
  logLevel: "warning",
  // One viem for the page and the SDK it bundles (the same version in both lock files).
  alias: { viem: join(here, "../sdk/js/node_modules/viem") },
});
const outputs = {
  "app.js": js.outputFiles[0].contents,
  "app.css": await readFile(join(here, "src/app.css")),
  "index.html": await readFile(join(here, "src/index.html")),
};

const dist = join(here, "dist");
if (check) {
  const stale = [];
  for (const [name, bytes] of Object.entries(outputs)) {
    const committed = await readFile(join(dist, name)).catch(() => null);
    if (!committed || Buffer.compare(Buffer.from(committed), Buffer.from(bytes)) !== 0) stale.push(name);
  }
  if (stale.length) {
    console.error(`explorer/dist is not the build of explorer/src: ${stale.join(", ")} differ; run \`node explorer/build.mjs\` and commit dist/`);
    process.exit(1);
  }
  console.log("explorer/dist matches a fresh build");
} else {
  await mkdir(dist, { recursive: true });
  for (const [name, bytes] of Object.entries(outputs)) await writeFile(join(dist, name), bytes);
  console.log(`explorer/dist: ${Object.entries(outputs).map(([n, b]) => `${n} ${b.length} B`).join(", ")}`);
}
