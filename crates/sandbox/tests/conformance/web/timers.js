// setTimeout / clearTimeout / setInterval ordering, arguments, microtasks before timers.
export default {
  async fetch(request, env, ctx) {
    await t('order', () => new Promise((resolve) => {
      const seen = [];
      setTimeout(() => seen.push('t20'), 20);
      setTimeout(() => seen.push('t0'), 0);
      setTimeout(() => seen.push('t5'), 5);
      Promise.resolve().then(() => seen.push('micro'));
      queueMicrotask(() => seen.push('qm'));
      seen.push('sync');
      setTimeout(() => resolve(seen), 40);
    }));
    await t('args', () => new Promise((resolve) => setTimeout((a, b) => resolve([a, b]), 1, 'x', 2)));
    await t('clearTimeout', () => new Promise((resolve) => {
      let fired = false;
      const id = setTimeout(() => { fired = true; }, 5);
      clearTimeout(id);
      clearTimeout(id);
      clearTimeout(undefined);
      setTimeout(() => resolve(fired), 20);
    }));
    await t('setInterval', () => new Promise((resolve) => {
      let n = 0;
      const id = setInterval(() => { n++; if (n === 3) { clearInterval(id); setTimeout(() => resolve(n), 30); } }, 2);
    }));
    await t('same delay FIFO', () => new Promise((resolve) => {
      const seen = [];
      for (let i = 0; i < 5; i++) setTimeout(() => seen.push(i), 3);
      setTimeout(() => resolve(seen), 15);
    }));
    await t('nested timers', () => new Promise((resolve) => setTimeout(() => setTimeout(() => resolve('inner'), 1), 1)));
    await t('negative/NaN delay', () => new Promise((resolve) => { const s = []; setTimeout(() => s.push('neg'), -5); setTimeout(() => s.push('nan'), NaN); setTimeout(() => resolve(s), 5); }));
    await t('time advances', async () => { const a = Date.now(); await new Promise((r) => setTimeout(r, 30)); return Date.now() - a >= 25; });
    await t('id type', () => { const id = setTimeout(() => {}, 1); clearTimeout(id); return typeof id; });
    await t('non-function', () => setTimeout('code', 1));
    return done();
  },
};
