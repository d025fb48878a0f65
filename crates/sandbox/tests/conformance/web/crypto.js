// crypto.getRandomValues, crypto.randomUUID, crypto.subtle.digest.
const hex = (b) => [...new Uint8Array(b)].map((x) => x.toString(16).padStart(2, '0')).join('');
export default {
  async fetch(request, env, ctx) {
    await t('getRandomValues returns same array', () => { const a = new Uint8Array(16); return crypto.getRandomValues(a) === a; });
    await t('getRandomValues fills', () => { const a = new Uint32Array(64); crypto.getRandomValues(a); return a.some((x) => x !== 0); });
    await t('getRandomValues types', () => [Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array, BigInt64Array, BigUint64Array]
      .map((C) => crypto.getRandomValues(new C(2)).length));
    await t('getRandomValues float', () => crypto.getRandomValues(new Float64Array(2)));
    await t('getRandomValues 65536 ok', () => crypto.getRandomValues(new Uint8Array(65536)).length);
    await t('getRandomValues too big', () => crypto.getRandomValues(new Uint8Array(65537)));
    await t('randomUUID format', () => /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(crypto.randomUUID()));
    await t('randomUUID distinct', () => crypto.randomUUID() !== crypto.randomUUID());
    const data = new TextEncoder().encode('abc');
    for (const alg of ['SHA-1', 'SHA-256', 'SHA-384', 'SHA-512']) {
      await t(`digest ${alg}`, async () => hex(await crypto.subtle.digest(alg, data)));
    }
    await t('digest object alg', async () => hex(await crypto.subtle.digest({ name: 'sha-256' }, new Uint8Array(0))));
    await t('digest ArrayBuffer input', async () => hex(await crypto.subtle.digest('SHA-256', data.buffer)));
    await t('digest DataView input', async () => hex(await crypto.subtle.digest('SHA-256', new DataView(data.buffer, 1))));
    await t('digest result type', async () => (await crypto.subtle.digest('SHA-256', data)) instanceof ArrayBuffer);
    await t('digest 1 MiB', async () => hex(await crypto.subtle.digest('SHA-512', new Uint8Array(1 << 20).fill(7))));
    await t('digest unknown alg', () => crypto.subtle.digest('SHA-999', data));
    await t('digest MD5', async () => hex(await crypto.subtle.digest('MD5', data)));
    await t('digest bad data', () => crypto.subtle.digest('SHA-256', 'abc'));
    return done();
  },
};
