// An agent: it watches an AgentInbox contract (contracts/src/examples/AgentInbox.sol), asks
// the worker's own model to classify each post (greedy; a deterministic keyword rule decides
// when the model's answer names no single label), and records its decision on chain from its
// own address (env.chain). Its triggers (uploaded with `pith programs triggers`):
//   - the inbox's `Posted(uint256,address,string)` event: one firing per post;
//   - a cron schedule: a sweep that decides any post still undecided (a firing lost with a
//     worker that died, a transaction that did not make it), so no post is missed.
// Each firing runs on one worker only (claimed in shared storage), and the inbox accepts one
// decision per post, so no decision is ever made twice (docs/adr/0170-agents.md).
//
// Requests: POST /.pith/agent (from the worker: headers pith-trigger, pith-firing) and
// GET / (anyone: what the agent has done).

const LABELS = ["positive", "negative", "neutral"];
const CODE = { positive: 1, negative: 2, neutral: 3 };
const POSITIVE = new Set(["good", "great", "love", "excellent", "happy", "nice", "wonderful", "best"]);
const NEGATIVE = new Set(["bad", "terrible", "hate", "awful", "sad", "poor", "worst", "broken"]);
// Function selectors and the event topic (keccak256 of the signatures).
const SEL = { decide: "bcc4e97d", decision: "a83a475c", texts: "5c121972", posts: "67b2cf1d" };
const POSTED = "0xc81d15f76f665dc633238bb59b023f7ebc75eb0c90ef79ff741f6bbf03e586e6";
const SWEEP_MAX = 5;

export function rule(text) {
  let score = 0;
  for (const w of text.toLowerCase().match(/[a-z]+/g) ?? []) {
    if (POSITIVE.has(w)) score += 1;
    if (NEGATIVE.has(w)) score -= 1;
  }
  return score > 0 ? "positive" : score < 0 ? "negative" : "neutral";
}

export function parse(answer) {
  const words = answer.toLowerCase().match(/[a-z]+/g) ?? [];
  const found = LABELS.filter((l) => words.includes(l));
  return found.length === 1 ? found[0] : null;
}

const word = (n) => BigInt(n).toString(16).padStart(64, "0");

/** The string of an ABI encoding that starts with its offset (a return value or event data). */
export function decodeString(hex) {
  const h = hex.startsWith("0x") ? hex.slice(2) : hex;
  const off = Number(BigInt("0x" + h.slice(0, 64))) * 2;
  const len = Number(BigInt("0x" + h.slice(off, off + 64)));
  const bytes = new Uint8Array(len);
  for (let i = 0; i < len; i++) bytes[i] = parseInt(h.slice(off + 64 + 2 * i, off + 66 + 2 * i), 16);
  return new TextDecoder().decode(bytes);
}

async function classify(env, text) {
  try {
    const r = await env.ai.chat({
      messages: [
        { role: "system", content: "Classify the sentiment of the user's text. Answer with one word: positive, negative or neutral." },
        { role: "user", content: text.slice(0, 2000) },
      ],
      max_tokens: 4,
      temperature: 0,
    });
    const label = parse(r.message.content);
    if (label) return { label, byModel: true };
  } catch (e) {
    console.warn(`model unavailable (${e.message}); the rule decides`);
  }
  return { label: rule(text), byModel: false };
}

/** Decide post `id` unless it is decided already. */
async function decideOne(env, inbox, id, text) {
  const post = id.toString(); // JSON has no BigInt
  const current = await env.chain.call({ to: inbox, data: "0x" + SEL.decision + word(id) });
  if (BigInt(current) !== 0n) return { post, skipped: "already decided" };
  const { label, byModel } = await classify(env, text);
  const data = "0x" + SEL.decide + word(id) + word(CODE[label]) + word(byModel ? 1 : 0);
  try {
    const tx = await env.chain.sendTransaction({ to: inbox, data });
    console.log(`post ${id}: ${label} (${byModel ? "model" : "rule"}) tx ${tx}`);
    return { post, label, byModel, tx };
  } catch (e) {
    // Another firing decided it first (AlreadyDecided), or the transaction failed: the next
    // sweep looks again.
    console.warn(`post ${id}: not recorded now: ${e.message}`);
    return { post, label, byModel, error: e.message };
  }
}

async function onEvent(env, event) {
  if (event.topics[0] !== POSTED) return { ignored: "not a Posted event" };
  const id = BigInt(event.topics[1]);
  const text = decodeString(event.data);
  await env.kv.put("inbox", event.address);
  return decideOne(env, event.address, id, text);
}

async function sweep(env, inbox) {
  if (!inbox) return { swept: 0, note: "no inbox known yet" };
  await env.kv.put("inbox", inbox);
  const n = BigInt(await env.chain.call({ to: inbox, data: "0x" + SEL.posts }));
  let done = BigInt((await env.kv.get("swept")) ?? "0");
  const results = [];
  for (let id = done + 1n; id <= n && results.length < SWEEP_MAX; id++) {
    const current = BigInt(await env.chain.call({ to: inbox, data: "0x" + SEL.decision + word(id) }));
    if (current === 0n) {
      const text = decodeString(await env.chain.call({ to: inbox, data: "0x" + SEL.texts + word(id) }));
      results.push(await decideOne(env, inbox, id, text));
      break; // one decision per sweep: its transaction must land before the next is checked
    }
    done = id;
  }
  await env.kv.put("swept", done.toString());
  return { swept: done.toString(), posts: n.toString(), results };
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const trigger = request.headers.get("pith-trigger");
    if (url.pathname === "/.pith/agent" && trigger) {
      const firing = await request.json();
      await env.kv.put("last-firing", firing.firing);
      const result =
        trigger === "event"
          ? await onEvent(env, firing.event)
          : await sweep(env, firing.events?.[0]?.address ?? (await env.kv.get("inbox")));
      return Response.json({ firing: firing.firing, result });
    }
    return Response.json({
      inbox: await env.kv.get("inbox"),
      swept: await env.kv.get("swept"),
      last_firing: await env.kv.get("last-firing"),
    });
  },
};
