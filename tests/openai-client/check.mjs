// The official OpenAI client (npm `openai`), unchanged, pointed at `pith proxy --inference`:
// the model list, a completion and a streamed completion of the same greedy prompt. Prints
// one JSON object for the caller (crates/cli/tests/network_e2e.rs) to check.
//
// usage: node check.mjs BASE_URL   (e.g. http://127.0.0.1:8788/v1)
import OpenAI from "openai";

const baseURL = process.argv[2];
if (!baseURL) {
  console.error("usage: node check.mjs BASE_URL");
  process.exit(2);
}
// The proxy needs no key: it is the user's own endpoint on localhost.
const client = new OpenAI({ baseURL, apiKey: "unused", maxRetries: 0, timeout: 120_000 });

const models = await client.models.list();
const model = models.data[0].id;
const params = {
  model,
  messages: [{ role: "user", content: "Name one colour." }],
  max_tokens: 12,
  temperature: 0,
};

const whole = await client.chat.completions.create(params);

const stream = await client.chat.completions.create({ ...params, stream: true, stream_options: { include_usage: true } });
let streamed = "";
let chunks = 0;
let finish = null;
let usage = null;
for await (const chunk of stream) {
  chunks += 1;
  const c = chunk.choices[0];
  if (c?.delta?.content) streamed += c.delta.content;
  if (c?.finish_reason) finish = c.finish_reason;
  if (chunk.usage) usage = chunk.usage;
}

let refused = null;
try {
  await client.chat.completions.create({ ...params, model: "no-such-model" });
} catch (e) {
  refused = { status: e.status, code: e.code ?? e.error?.code ?? null };
}

console.log(
  JSON.stringify({
    models: models.data.map((m) => m.id),
    whole: {
      id: whole.id,
      text: whole.choices[0].message.content,
      finish: whole.choices[0].finish_reason,
      usage: whole.usage,
      fingerprint: whole.system_fingerprint,
    },
    streamed: { text: streamed, chunks, finish, usage },
    refused,
  }),
);
