// JSON, Promises and async functions.
export default {
  async fetch(request, env, ctx) {
    await t('JSON.stringify', () => JSON.stringify({ a: [1, 'x', null, true], b: { c: 1.5 }, u: undefined, f() {}, d: new Date(0) }));
    await t('JSON.stringify indent', () => JSON.stringify({ a: [1, { b: 2 }] }, null, 2));
    await t('JSON.stringify replacer', () => JSON.stringify({ a: 1, b: 2, c: { a: 3 } }, ['a', 'c']));
    await t('JSON.stringify fn replacer', () => JSON.stringify({ a: 1, b: 'x' }, (k, v) => (typeof v === 'number' ? v * 10 : v)));
    await t('JSON.stringify unicode', () => JSON.stringify('é\u2028\ud800\u0000"\\'));
    await t('JSON.stringify toJSON', () => JSON.stringify({ x: { toJSON() { return 'X'; } } }));
    await t('JSON.stringify bigint', () => JSON.stringify({ n: 1n }));
    await t('JSON.stringify cycle', () => { const o = {}; o.o = o; return JSON.stringify(o); });
    await t('JSON.stringify numbers', () => JSON.stringify([NaN, Infinity, -0, 1e21, 0.1 + 0.2, 5e-324]));
    await t('JSON.parse', () => JSON.parse('{"a":[1,2,{"b":null}],"c":"\\u00e9","d":1e3}'));
    await t('JSON.parse reviver', () => JSON.parse('{"a":1,"b":[2]}', (k, v) => (typeof v === 'number' ? v + 1 : v)));
    await t('JSON.parse invalid', () => JSON.parse('{a:1}'));
    await t('JSON.parse trailing comma', () => JSON.parse('[1,]'));
    await t('JSON.parse proto key', () => { const o = JSON.parse('{"__proto__":{"x":1}}'); return [Object.keys(o), o.x]; });
    await t('JSON body of request', async () => (await request.clone().json()));

    await t('microtask order', async () => {
      const seen = [];
      const p = Promise.resolve();
      p.then(() => seen.push(1)).then(() => seen.push(3));
      p.then(() => seen.push(2)).then(() => seen.push(4));
      (async () => { seen.push('a0'); await null; seen.push('a1'); await null; seen.push('a2'); })();
      seen.push('sync');
      await new Promise((r) => setTimeout(r, 0));
      return seen;
    });
    await t('Promise.all', () => Promise.all([1, Promise.resolve(2), new Promise((r) => setTimeout(() => r(3), 5))]));
    await t('Promise.all reject', () => Promise.all([Promise.resolve(1), Promise.reject(new TypeError('x'))]));
    await t('Promise.allSettled', async () => (await Promise.allSettled([Promise.resolve(1), Promise.reject(new RangeError('r'))])).map((r) => [r.status, r.value, r.reason && r.reason.name]));
    await t('Promise.race', () => Promise.race([new Promise((r) => setTimeout(() => r('slow'), 20)), new Promise((r) => setTimeout(() => r('fast'), 1))]));
    await t('Promise.any', () => Promise.any([Promise.reject(new Error('a')), Promise.resolve('b')]));
    await t('Promise.any all rejected', async () => { try { await Promise.any([Promise.reject(1)]); } catch (e) { return [e.constructor.name, e.errors]; } });
    await t('Promise.withResolvers', async () => { if (typeof Promise.withResolvers !== 'function') return 'absent'; const { promise, resolve } = Promise.withResolvers(); resolve(7); return promise; });
    await t('async throw', async () => { const f = async () => { throw new SyntaxError('s'); }; return f(); });
    await t('await thenable', async () => await { then(r) { r('thenable'); } });
    await t('async iteration', async () => { async function* g() { yield 1; await null; yield 2; } const o = []; for await (const x of g()) o.push(x); return o; });
    await t('finally', async () => { const seen = []; await Promise.resolve(1).finally(() => seen.push('f')); return seen; });
    await t('unhandled inner rejection caught', async () => { try { await Promise.reject(new Error('e')); } catch (e) { return e.message; } });
    return done();
  },
};
