// In-memory KV service for workerd's KV namespace binding in the conformance test: the
// binding sends GET/PUT/DELETE https://fake-host/<key>?urlencoded=true and lists with
// GET https://fake-host/?key_count_limit=&prefix=&cursor=. Listing is in key order; the cursor is
// the last key returned, as in the Pith sandbox's MemoryKv.
const store = new Map();
export default {
  async fetch(req) {
    const u = new URL(req.url);
    const key = decodeURIComponent(u.pathname.slice(1));
    if (key === '') {
      const prefix = u.searchParams.get('prefix') || '';
      const limit = Number(u.searchParams.get('key_count_limit') || 1000);
      const cursor = u.searchParams.get('cursor') || '';
      const names = [...store.keys()].filter((k) => k.startsWith(prefix) && (cursor === '' || k > cursor)).sort();
      const page = names.slice(0, limit);
      const more = names.length > limit;
      const body = { keys: page.map((name) => ({ name })), list_complete: !more };
      if (more) body.cursor = page[page.length - 1];
      return Response.json(body);
    }
    if (req.method === 'PUT') { store.set(key, new Uint8Array(await req.arrayBuffer())); return new Response(null); }
    if (req.method === 'DELETE') { store.delete(key); return new Response(null); }
    const v = store.get(key);
    return v === undefined ? new Response(null, { status: 404 }) : new Response(v);
  },
};
