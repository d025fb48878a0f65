// env.chain: eth_call and sendTransaction through the host's provider (Pith only; the test
// provider answers eth_call with the program's code hash and sendTransaction with
// sha256 of the transaction JSON, and fails calls without `to`).
export default {
  async fetch(request, env, ctx) {
    await t('call', () => env.chain.call({ to: '0x00000000000000000000000000000000000000aa', data: '0x1234' }));
    await t('call without to', () => env.chain.call({ data: '0x' }));
    await t('sendTransaction', () => env.chain.sendTransaction({ to: '0x00000000000000000000000000000000000000bb', value: '0x1', data: '0x' }));
    await t('bigint tx', () => env.chain.call({ to: '0x00', value: 1n }));
    return done();
  },
};
