// Request and Response: construction, bodies, clone, statics, the incoming request.
export default {
  async fetch(request, env, ctx) {
    await t('incoming', async () => [request.method, new URL(request.url).pathname, await request.text(), request.bodyUsed]);
    await t('incoming used twice', () => request.text());
    await t('request defaults', () => { const r = new Request('http://h.test/x'); return [r.method, r.url, [...r.headers], r.redirect, r.bodyUsed]; });
    await t('request method normalised', () => ['get', 'post', 'delete', 'head', 'options', 'put', 'PATCH'].map((m) => new Request('http://h/', { method: m }).method));
    await t('request method Patch', () => new Request('http://h/', { method: 'Patch' }).method);
    await t('request custom method', () => new Request('http://h/', { method: 'custom' }).method);
    await t('request bad method', () => new Request('http://h/', { method: 'a b' }));
    await t('request relative url', () => new Request('/x'));
    await t('request GET with body', () => new Request('http://h/', { body: 'x' }));
    await t('request string body', async () => { const r = new Request('http://h/', { method: 'POST', body: 'hé' }); return [r.headers.get('content-type'), await r.text()]; });
    await t('request json body', async () => new Request('http://h/', { method: 'PUT', body: '{"a":1}' }).json());
    await t('request bytes body', async () => { const r = new Request('http://h/', { method: 'POST', body: new Uint8Array([1, 2, 3]) }); return [r.headers.get('content-type'), await r.arrayBuffer()]; });
    await t('request usp body', async () => { const r = new Request('http://h/', { method: 'POST', body: new URLSearchParams({ a: 'b c' }) }); return [r.headers.get('content-type'), await r.text()]; });
    await t('request from request', async () => { const a = new Request('http://h/a', { method: 'POST', headers: { x: '1' }, body: 'b' }); const b = new Request(a, { headers: { y: '2' } }); return [b.method, b.url, [...b.headers], await b.text()]; });
    await t('request clone', async () => { const a = new Request('http://h/', { method: 'POST', body: 'x' }); const b = a.clone(); return [await a.text(), await b.text()]; });
    await t('request clone after use', async () => { const a = new Request('http://h/', { method: 'POST', body: 'x' }); await a.text(); return a.clone(); });
    await t('request toStringTag', () => Object.prototype.toString.call(new Request('http://h/')));

    await t('response defaults', async () => { const r = new Response(); return [r.status, r.statusText, r.ok, r.type, r.url, r.redirected, [...r.headers], await r.text()]; });
    await t('response string', async () => { const r = new Response('hi', { status: 201, statusText: 'Made', headers: { 'x-a': '1' } }); return [r.status, r.statusText, r.ok, [...r.headers], await r.text()]; });
    await t('response bytes', async () => new Uint8Array(await new Response(new Uint8Array([0, 255])).arrayBuffer()));
    await t('response ArrayBuffer body', async () => new Response(new Uint16Array([1, 2]).buffer).arrayBuffer());
    await t('response json()', async () => new Response('{"a":[1,2]}').json());
    await t('response bad json', async () => new Response('{').json());
    await t('response status range', () => new Response('', { status: 600 }));
    await t('response status 199', () => new Response('', { status: 199 }));
    await t('response null body status', () => new Response('x', { status: 204 }));
    await t('response 204 null body', () => new Response(null, { status: 204 }).status);
    await t('response ok range', () => [200, 299, 300, 404, 500].map((s) => new Response(null, { status: s }).ok));
    await t('body used', async () => { const r = new Response('x'); await r.text(); return [r.bodyUsed, await r.text().catch((e) => e.name)]; });
    await t('clone', async () => { const r = new Response('x', { headers: { a: '1' } }); const c = r.clone(); return [await r.text(), await c.text(), [...c.headers]]; });
    await t('Response.json', async () => { const r = Response.json({ a: 1 }, { status: 202, headers: { 'x-y': 'z' } }); return [r.status, [...r.headers], await r.text()]; });
    await t('Response.json default', () => [...Response.json([1]).headers]);
    await t('Response.redirect', () => { const r = Response.redirect('http://h.test/to', 301); return [r.status, r.headers.get('location')]; });
    await t('Response.redirect default', () => Response.redirect('http://h.test/').status);
    await t('Response.redirect bad status', () => Response.redirect('http://h/', 200));
    await t('Response.error', () => { const r = Response.error(); return [r.status, r.type, r.ok]; });
    await t('response toStringTag', () => Object.prototype.toString.call(new Response()));
    return new Response(JSON.stringify(__results, null, 1), { status: 200, headers: { 'content-type': 'application/json', 'x-custom': 'yes' } });
  },
};
