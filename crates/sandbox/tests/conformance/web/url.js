// URL and URLSearchParams.
function parts(u) {
  return [u.href, u.protocol, u.username, u.password, u.host, u.hostname, u.port, u.pathname, u.search, u.hash, u.origin];
}
export default {
  async fetch(request, env, ctx) {
    await t('full', () => parts(new URL('https://user:pw@Example.COM:8443/a/./b/../c?x=1&y=%20z#frag')));
    await t('default port dropped', () => parts(new URL('https://example.com:443/')));
    await t('relative', () => parts(new URL('../x?q#h', 'http://h.test/a/b/c')));
    await t('relative to URL', () => new URL('/p', new URL('http://h.test/a')).href);
    await t('idn', () => new URL('http://münchen.de/').hostname);
    await t('ipv6', () => parts(new URL('http://[::1]:8080/')));
    await t('ipv4 normalised', () => new URL('http://0x7f.1/').hostname);
    await t('percent encoding', () => new URL('http://h/a b/ü?q=ä ö#f g').href);
    await t('file', () => parts(new URL('file:///etc/passwd')));
    await t('data', () => parts(new URL('data:text/plain,hi')));
    await t('mailto', () => parts(new URL('mailto:a@b.c')));
    await t('invalid', () => new URL('not a url'));
    await t('invalid base', () => new URL('/x', 'nope'));
    await t('canParse', () => [URL.canParse('http://x'), URL.canParse('x'), URL.canParse('x', 'http://h/')]);
    await t('setters', () => {
      const u = new URL('http://h.test/p?q=1#f');
      u.protocol = 'https'; u.hostname = 'other.test'; u.port = '8080'; u.pathname = '/a b'; u.search = 'x=1'; u.hash = 'top';
      u.username = 'me'; u.password = 'secret';
      return parts(u);
    });
    await t('href setter invalid', () => { const u = new URL('http://h/'); u.href = 'nope'; return u.href; });
    await t('searchParams live', () => {
      const u = new URL('http://h/?a=1&b=2');
      u.searchParams.append('c', '3 4');
      u.searchParams.delete('a');
      const s1 = u.href;
      u.search = '?z=9';
      return [s1, u.searchParams.get('z'), u.searchParams.get('b')];
    });
    await t('toJSON/toString', () => [JSON.stringify({ u: new URL('http://h/x') }), String(new URL('http://h/x'))]);
    await t('request url', () => { const u = new URL(request.url); return [u.pathname, u.searchParams.get('q'), u.searchParams.has('echo')]; });

    await t('usp parse', () => [...new URLSearchParams('?a=1&b=2&a=3&c&=e&d=%41+B')]);
    await t('usp object', () => new URLSearchParams({ x: '1', y: 'two words' }).toString());
    await t('usp pairs', () => new URLSearchParams([['a', '1'], ['b', '&=?']]).toString());
    await t('usp bad pair', () => new URLSearchParams([['a']]));
    await t('usp get/getAll/has', () => { const p = new URLSearchParams('a=1&a=2&b='); return [p.get('a'), p.getAll('a'), p.has('b'), p.has('c'), p.get('c'), p.size]; });
    await t('usp has/delete value', () => { const p = new URLSearchParams('a=1&a=2'); const h = [p.has('a', '2'), p.has('a', '3')]; p.delete('a', '1'); return [h, p.toString()]; });
    await t('usp set', () => { const p = new URLSearchParams('a=1&b=2&a=3'); p.set('a', 'x'); return p.toString(); });
    await t('usp sort', () => { const p = new URLSearchParams('c=1&a=2&b=3&a=1'); p.sort(); return p.toString(); });
    await t('usp encode', () => new URLSearchParams({ k: " !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~é😀" }).toString());
    await t('usp forEach/keys/values', () => { const p = new URLSearchParams('a=1&b=2'); const o = []; p.forEach((v, k) => o.push(k + v)); return [o, [...p.keys()], [...p.values()], [...p.entries()]]; });
    await t('usp from usp', () => new URLSearchParams(new URLSearchParams('a=1')).toString());
    await t('usp toStringTag', () => Object.prototype.toString.call(new URLSearchParams()));
    return done();
  },
};
