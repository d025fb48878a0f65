// Classify a short text as positive, negative or neutral with the worker's own model
// (env.ai.chat: the text never leaves the TEE; greedy decoding, so the same text gets the
// same answer from the same model). When the model's answer does not name exactly one label,
// a deterministic keyword rule decides, and the response says which of the two did. The
// receipt of the call names the model's file hash.
const LABELS = ["positive", "negative", "neutral"];
const POSITIVE = new Set(["good", "great", "love", "excellent", "happy", "nice", "wonderful", "best"]);
const NEGATIVE = new Set(["bad", "terrible", "hate", "awful", "sad", "poor", "worst", "broken"]);

function rule(text) {
  let score = 0;
  for (const w of text.toLowerCase().match(/[a-z]+/g) ?? []) {
    if (POSITIVE.has(w)) score += 1;
    if (NEGATIVE.has(w)) score -= 1;
  }
  return score > 0 ? "positive" : score < 0 ? "negative" : "neutral";
}

function parse(answer) {
  const words = answer.toLowerCase().match(/[a-z]+/g) ?? [];
  const found = LABELS.filter((l) => words.includes(l));
  return found.length === 1 ? found[0] : null;
}

export default {
  async fetch(request, env) {
    const text = request.method === "POST" ? await request.text() : new URL(request.url).searchParams.get("text") ?? "";
    if (!text.trim()) return new Response("give ?text=... or a POST body\n", { status: 400 });
    const r = await env.ai.chat({
      messages: [
        { role: "system", content: "Classify the sentiment of the user's text. Answer with one word: positive, negative or neutral." },
        { role: "user", content: text.slice(0, 2000) },
      ],
      max_tokens: 4,
    });
    const label = parse(r.message.content);
    return Response.json({
      label: label ?? rule(text),
      decided_by: label ? "model" : "rule",
      model_answer: r.message.content,
      model_hash: r.model_hash,
    });
  },
};
