// env.keys.derive: public key, address, EIP-191 sign, EIP-712 signTypedData; the secret is
// not exportable (Pith only: compared with env_keys.expected.json; the test also recovers
// each signer from the signatures against digests computed independently with viem).
const MAIL = {
  domain: { name: 'Ether Mail', version: '1', chainId: 1, verifyingContract: '0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC' },
  types: {
    EIP712Domain: [{ name: 'name', type: 'string' }, { name: 'version', type: 'string' }, { name: 'chainId', type: 'uint256' }, { name: 'verifyingContract', type: 'address' }],
    Person: [{ name: 'name', type: 'string' }, { name: 'wallet', type: 'address' }],
    Mail: [{ name: 'from', type: 'Person' }, { name: 'to', type: 'Person' }, { name: 'contents', type: 'string' }],
  },
  primaryType: 'Mail',
  message: { from: { name: 'Cow', wallet: '0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826' }, to: { name: 'Bob', wallet: '0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB' }, contents: 'Hello, Bob!' },
};
export default {
  async fetch(request, env, ctx) {
    const k = await env.keys.derive('conformance/a');
    await t('path', () => k.path);
    await t('publicKey', () => k.publicKey);
    await t('address', () => k.address);
    await t('shape', () => [Object.keys(k).sort(), Object.isFrozen(k), 'privateKey' in k, 'secretKey' in k]);
    await t('same path same key', async () => (await env.keys.derive('conformance/a')).address === k.address);
    await t('other path other key', async () => (await env.keys.derive('conformance/b')).address !== k.address);
    await t('sign string', () => k.sign('hello'));
    await t('sign bytes', () => k.sign(new Uint8Array([0, 1, 2, 255])));
    await t('sign ArrayBuffer', () => k.sign(new Uint8Array([0, 1, 2, 255]).buffer));
    await t('sign number', () => k.sign(5));
    await t('signTypedData Mail', () => k.signTypedData(MAIL));
    await t('signTypedData without EIP712Domain type', () => { const { EIP712Domain, ...types } = MAIL.types; return k.signTypedData({ ...MAIL, types }); });
    await t('signTypedData bad', () => k.signTypedData({ types: {}, primaryType: 'X', message: {} }));
    await t('signTypedData cyclic', () => { const o = {}; o.o = o; return k.signTypedData(o); });
    await t('derive coerces path', async () => (await env.keys.derive(42)).path);
    return done();
  },
};
