// env.kv: get/put/delete/list on the program's store (workerd: a KV namespace binding).
export default {
  async fetch(request, env, ctx) {
    await t('get missing', () => env.kv.get('missing'));
    await t('put returns', () => env.kv.put('a', 'alpha'));
    await t('get text', () => env.kv.get('a'));
    await t('get type text', () => env.kv.get('a', 'text'));
    await t('get options text', () => env.kv.get('a', { type: 'text' }));
    await t('put json', () => env.kv.put('j', JSON.stringify({ x: [1, 2] })));
    await t('get json', () => env.kv.get('j', 'json'));
    await t('get json options', () => env.kv.get('j', { type: 'json' }));
    await t('put bytes', () => env.kv.put('b', new Uint8Array([0, 1, 255])));
    await t('get arrayBuffer', () => env.kv.get('b', 'arrayBuffer'));
    await t('put ArrayBuffer', () => env.kv.put('ab', new Uint8Array([7, 8]).buffer));
    await t('get ArrayBuffer back', () => env.kv.get('ab', 'arrayBuffer'));
    await t('unicode key/value', async () => { await env.kv.put('ключ/é', 'värde😀'); return env.kv.get('ключ/é'); });
    await t('overwrite', async () => { await env.kv.put('a', 'beta'); return env.kv.get('a'); });
    await t('delete', async () => { await env.kv.delete('a'); return env.kv.get('a'); });
    await t('delete missing', () => env.kv.delete('never'));
    for (const k of ['p/1', 'p/2', 'p/3', 'q/1']) await env.kv.put(k, k);
    const names = (l) => [l.keys.map((k) => k.name), l.list_complete, typeof l.cursor];
    await t('list all', async () => names(await env.kv.list()));
    await t('list prefix', async () => names(await env.kv.list({ prefix: 'p/' })));
    await t('list pages', async () => {
      const first = await env.kv.list({ prefix: 'p/', limit: 2 });
      const second = await env.kv.list({ prefix: 'p/', limit: 2, cursor: first.cursor });
      return [names(first), names(second)];
    });
    await t('list no match', async () => names(await env.kv.list({ prefix: 'zzz' })));
    return done();
  },
};
