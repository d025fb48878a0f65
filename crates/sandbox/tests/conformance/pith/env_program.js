// env.program and the shape of env (Pith only: compared with env_program.expected.json).
export default {
  async fetch(request, env, ctx) {
    await t('id', () => env.program.id);
    await t('codeHash', () => env.program.codeHash);
    await t('frozen', () => [Object.isFrozen(env), Object.isFrozen(env.program), Object.isFrozen(env.secrets), Object.isFrozen(env.kv), Object.isFrozen(env.keys), Object.isFrozen(env.chain)]);
    await t('assign program id', () => { env.program.id = 'other'; return env.program.id; });
    await t('replace env member', () => { env.kv = null; return typeof env.kv; });
    await t('env keys', () => Object.keys(env).sort());
    await t('secrets read-only', () => { env.secrets.API_KEY = 'x'; return env.secrets.API_KEY; });
    await t('secrets prototype-free', () => Object.getPrototypeOf(env.secrets));
    return done();
  },
};
