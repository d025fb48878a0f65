// env.attestation(reportData): host evidence binding up to 64 bytes (Pith only; the test
// host's provider returns "pith-test-evidence:" + code hash + report data).
const ascii = (u8) => [...u8].map((x) => (x >= 32 && x < 127 ? String.fromCharCode(x) : '.')).join('');
const hex = (u8) => '0x' + [...u8].map((x) => x.toString(16).padStart(2, '0')).join('');
// [prefix, code hash, report data] of the test provider's evidence.
const text = (b) => { const u8 = new Uint8Array(b); return [ascii(u8.subarray(0, 19)), hex(u8.subarray(19, 51)), ascii(u8.subarray(51))]; };
export default {
  async fetch(request, env, ctx) {
    await t('64 bytes', async () => { const e = await env.attestation(new Uint8Array(64).fill(0x41)); return [e instanceof Uint8Array || e instanceof ArrayBuffer, text(e)]; });
    await t('string', async () => text(await env.attestation('nonce')));
    await t('ArrayBuffer', async () => text(await env.attestation(new Uint8Array([0x42, 0x43]).buffer)));
    await t('empty', async () => text(await env.attestation(new Uint8Array(0))));
    await t('65 bytes', () => env.attestation(new Uint8Array(65)));
    await t('not bytes', () => env.attestation({}));
    return done();
  },
};
