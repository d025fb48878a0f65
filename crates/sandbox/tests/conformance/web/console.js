// console: formatting of values, levels (log/info/debug to stdout, warn/error to stderr).
export default {
  async fetch(request, env, ctx) {
    console.log('plain string', 42, true, null, undefined);
    console.log({ a: 1, b: 'two', c: [1, 2, 3], d: { e: null } });
    console.log([1, 'x', [2, [3]]]);
    console.log(10n, -0, NaN, Infinity);
    console.log('nested', { deep: { deeper: { deepest: 1 } } });
    console.log(new Map([['k', 1]]));
    console.log(new Uint8Array([1, 2, 3]));
    console.log('');
    console.info('info line');
    console.debug('debug line');
    console.warn('warn line', { w: 1 });
    console.error('error line');
    console.log(function named() {}, () => {});
    console.log([], {});
    console.log(['it\'s', 'say "hi"', 'both \' and "', 'tab\tnl\n', 'back\\slash']);
    console.log({ 'a-b': 1, _ok: 2, $d: 3, '': 4, '1x': 5 });
    console.log({ l1: { l2: { l3: { l4: 1 } } }, arr: [[[[1]]]] });
    console.log(new Set([1, 'a']), [-0, 0], { z: -0 });
    console.log(class Klass {}, [undefined, null]);
    console.log('%s is substituted here', 'x');
    console.log('%s|%d|%i|%f|%j|%o|%O|%c|%%|%s', 'str', 42.5, 42.5, '1.5', { j: 1 }, [1], { o: 'x' }, 'color: red', { s: 1 }, 'extra', 7);
    console.log('%d %d', 1);
    console.log('%s', 5n, null);
    console.log('', 'after empty');
    await t('returns undefined', () => console.log('x'));
    return done();
  },
};
