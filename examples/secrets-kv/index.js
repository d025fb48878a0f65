// Secrets + kv: a per-user counter behind a bearer token.
//   GET  /count/NAME   -> {"name", "count"}  (increments)
//   GET  /list         -> {"names": [...]}
//   DELETE /count/NAME -> 204
// Requests must carry `authorization: Bearer <TOKEN secret>`.
export default {
  async fetch(request, env) {
    if (request.headers.get("authorization") !== `Bearer ${env.secrets.TOKEN}` || !env.secrets.TOKEN) {
      return new Response("unauthorized\n", { status: 401 });
    }
    const path = new URL(request.url).pathname;
    if (path === "/list") {
      const { keys } = await env.kv.list({ prefix: "count/" });
      return Response.json({ names: keys.map((k) => k.name.slice("count/".length)) });
    }
    const m = path.match(/^\/count\/([\w-]{1,64})$/);
    if (!m) return new Response("not found\n", { status: 404 });
    const key = `count/${m[1]}`;
    if (request.method === "DELETE") {
      await env.kv.delete(key);
      return new Response(null, { status: 204 });
    }
    const count = Number((await env.kv.get(key)) ?? 0) + 1;
    await env.kv.put(key, String(count));
    return Response.json({ name: m[1], count });
  },
};
