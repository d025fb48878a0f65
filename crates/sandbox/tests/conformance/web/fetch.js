// fetch against the test's loopback echo server.
export default {
  async fetch(request, env, ctx) {
    const base = new URL(request.url).searchParams.get('echo');
    await t('GET', async () => { const r = await fetch(`${base}/echo?a=1`); return [r.status, r.ok, r.statusText, r.headers.get('x-echo'), r.headers.get('content-type'), r.redirected, r.url === `${base}/echo?a=1`, await r.json()]; });
    await t('POST string', async () => { const r = await fetch(`${base}/echo`, { method: 'POST', body: 'hé', headers: { 'X-One': '1' } }); return (await r.json()); });
    await t('POST bytes', async () => (await (await fetch(`${base}/echo`, { method: 'PUT', body: new TextEncoder().encode('bytes') })).json()));
    await t('POST json', async () => (await (await fetch(`${base}/echo`, { method: 'POST', body: JSON.stringify({ k: [1] }), headers: { 'content-type': 'application/json' } })).json()));
    await t('Request object', async () => (await (await fetch(new Request(`${base}/echo`, { method: 'DELETE', headers: { 'x-req': 'r' } }))).json()));
    await t('URL object', async () => (await fetch(new URL(`${base}/echo`))).status);
    await t('404', async () => { const r = await fetch(`${base}/status/404`); return [r.status, r.ok, await r.text(), r.headers.get('x-multi')]; });
    await t('500', async () => { const r = await fetch(`${base}/status/500`); return [r.status, r.ok, await r.text()]; });
    await t('binary', async () => new Uint8Array(await (await fetch(`${base}/bytes`)).arrayBuffer()));
    await t('redirect followed', async () => { const r = await fetch(`${base}/redirect?to=/echo`); return [r.status, r.redirected, r.url === `${base}/echo`, (await r.json()).path]; });
    await t('redirect manual', async () => { const r = await fetch(`${base}/redirect?to=/echo`, { redirect: 'manual' }); return [r.status, r.headers.get('location'), r.redirected]; });
    await t('body once', async () => { const r = await fetch(`${base}/echo`); await r.text(); return r.text(); });
    await t('clone fetched', async () => { const r = await fetch(`${base}/echo`); const c = r.clone(); return [(await r.json()).method, (await c.json()).method]; });
    await t('parallel', async () => (await Promise.all([1, 2, 3].map((i) => fetch(`${base}/echo?i=${i}`).then((r) => r.json())))).map((j) => j.path));
    await t('invalid url', () => fetch('not a url'));
    await t('GET with body', () => fetch(`${base}/echo`, { body: 'x' }));
    return done();
  },
};
