// env.secrets: host-supplied values.
export default {
  async fetch(request, env, ctx) {
    await t('values', () => [env.secrets.API_KEY, env.secrets.GREETING]);
    await t('missing', () => env.secrets.NOPE);
    await t('keys', () => Object.keys(env.secrets).sort());
    await t('type', () => typeof env.secrets);
    await t('json', () => JSON.parse(JSON.stringify(env.secrets)));
    return done();
  },
};
