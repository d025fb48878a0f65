// Headers: construction, case-insensitivity, combining, iteration order, validation.
export default {
  async fetch(request, env, ctx) {
    await t('empty', () => [...new Headers()]);
    await t('from object', () => [...new Headers({ 'X-B': '2', 'x-a': '1', 'Content-Type': 'text/html' })]);
    await t('from pairs', () => [...new Headers([['a', '1'], ['A', '2'], ['b', ' 3 ']])]);
    await t('from Headers', () => [...new Headers(new Headers({ k: 'v' }))]);
    await t('get missing', () => new Headers().get('nope'));
    await t('append combines', () => { const h = new Headers(); h.append('x', '1'); h.append('X', '2'); return h.get('x'); });
    await t('set replaces', () => { const h = new Headers({ x: '1' }); h.append('x', '2'); h.set('x', '3'); return [...h]; });
    await t('delete', () => { const h = new Headers({ x: '1', y: '2' }); h.delete('X'); return [h.has('x'), h.has('y'), [...h]]; });
    await t('set-cookie kept apart', () => { const h = new Headers(); h.append('set-cookie', 'a=1'); h.append('Set-Cookie', 'b=2'); return [[...h], h.get('set-cookie'), h.getSetCookie()]; });
    await t('keys/values', () => { const h = new Headers({ b: '2', a: '1' }); return [[...h.keys()], [...h.values()]]; });
    await t('forEach', () => { const out = []; new Headers({ b: '2', a: '1' }).forEach((v, k) => out.push(k + '=' + v)); return out; });
    await t('value whitespace trimmed', () => new Headers({ x: '\t a b \n' }).get('x'));
    await t('invalid name', () => new Headers({ 'bad name': 'x' }));
    await t('invalid name char', () => new Headers().append('a:b', 'x'));
    await t('invalid value', () => new Headers().set('x', 'a\r\nb'));
    await t('bad init', () => new Headers([['a']]));
    await t('toStringTag', () => Object.prototype.toString.call(new Headers()));
    await t('incoming request headers', () => [request.headers.get('x-test'), request.headers.get('X-Multi'), request.headers.get('content-type'), request.headers.has('x-none')]);
    return done();
  },
};
