// Date and Date.now() read the host's Clock (Pith only; the test host's clock is fixed).
export default {
  async fetch(request, env, ctx) {
    await t('Date.now', () => Date.now());
    await t('new Date()', () => new Date().getTime());
    await t('Date() string', () => Date() === new Date().toString());
    await t('new Date(0)', () => new Date(0).toISOString());
    await t('new Date(y, m)', () => new Date(Date.UTC(2020, 1, 3)).toISOString());
    await t('Date.parse', () => Date.parse('2020-01-02T03:04:05Z'));
    await t('instanceof/constructor', () => [new Date() instanceof Date, new Date().constructor === Date, Date.name, Date.length, typeof Date.prototype.getTime]);
    await t('subclass', () => { class D extends Date {} const d = new D(); return [d instanceof D, d instanceof Date, d.getTime()]; });
    await t('timer then clock', async () => { await new Promise((r) => setTimeout(r, 5)); return Date.now(); });
    return done();
  },
};
