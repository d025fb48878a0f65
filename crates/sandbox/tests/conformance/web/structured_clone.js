// structuredClone.
export default {
  async fetch(request, env, ctx) {
    await t('primitives', () => [1, 'a', true, null, undefined, 10n, -0, NaN].map((v) => structuredClone(v)));
    await t('object deep copy', () => { const o = { a: { b: [1, 2] } }; const c = structuredClone(o); c.a.b.push(3); return [o, c, o !== c]; });
    await t('cycle', () => { const o = { n: 1 }; o.self = o; const c = structuredClone(o); return [c.self === c, c !== o]; });
    await t('shared refs', () => { const s = { x: 1 }; const c = structuredClone([s, s]); return c[0] === c[1]; });
    await t('Date', () => structuredClone(new Date(1700000000000)));
    await t('RegExp', () => { const r = structuredClone(/a+b/gi); return [r.source, r.flags, r.lastIndex]; });
    await t('Map/Set', () => [structuredClone(new Map([[1, { a: 1 }]])), structuredClone(new Set([1, 'x']))]);
    await t('typed arrays', () => [structuredClone(new Uint8Array([1, 2])), structuredClone(new Float64Array([1.5])), structuredClone(new BigInt64Array([5n]))]);
    await t('ArrayBuffer', () => structuredClone(new Uint8Array([9, 8]).buffer));
    await t('DataView', () => { const d = structuredClone(new DataView(new Uint8Array([1, 2, 3]).buffer, 1, 2)); return [d.byteOffset, d.byteLength, d.getUint8(0)]; });
    await t('subarray keeps buffer', () => { const c = structuredClone(new Uint8Array([1, 2, 3, 4]).subarray(1, 3)); return [c.byteOffset, c.length, c.buffer.byteLength, c]; });
    await t('Error', () => { const e = structuredClone(new RangeError('boom')); return [e instanceof Error, e.message]; });
    await t('boxed', () => [structuredClone(Object(1)) instanceof Number, structuredClone(Object('s')) instanceof String]);
    await t('array holes/props', () => { const a = [1, , 3]; const c = structuredClone(a); return [c.length, 1 in c, c]; });
    await t('class instance loses prototype', () => { class K { constructor() { this.v = 1; } m() {} } const c = structuredClone(new K()); return [c.v, c instanceof K, typeof c.m]; });
    await t('getter evaluated', () => structuredClone({ get g() { return 5; } }));
    await t('non-enumerable dropped', () => { const o = {}; Object.defineProperty(o, 'h', { value: 1, enumerable: false }); return Object.keys(structuredClone(o)); });
    await t('symbol keys dropped', () => Object.getOwnPropertySymbols(structuredClone({ [Symbol('s')]: 1 })).length);
    await t('function', () => structuredClone(() => 1));
    await t('function nested', () => structuredClone({ f() {} }));
    await t('symbol', () => structuredClone(Symbol('x')));
    await t('Promise', () => structuredClone(Promise.resolve()));
    await t('WeakMap', () => structuredClone(new WeakMap()));
    return done();
  },
};
