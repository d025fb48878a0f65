// TextEncoder, TextDecoder, atob, btoa.
export default {
  async fetch(request, env, ctx) {
    const enc = new TextEncoder();
    await t('encoding', () => [enc.encoding, new TextDecoder().encoding]);
    await t('encode', () => enc.encode('aé€😀'));
    await t('encode empty/undefined', () => [enc.encode(''), enc.encode(), enc.encode(undefined)]);
    await t('encode lone surrogate', () => enc.encode('\ud800x'));
    await t('encode non-string', () => enc.encode(123));
    await t('encodeInto', () => { const d = new Uint8Array(5); const r = enc.encodeInto('aé€', d); return [r, d]; });
    await t('encodeInto exact', () => { const d = new Uint8Array(6); return [enc.encodeInto('aé€', d), d]; });
    await t('decode', () => new TextDecoder().decode(new Uint8Array([0x61, 0xc3, 0xa9, 0xe2, 0x82, 0xac, 0xf0, 0x9f, 0x98, 0x80])));
    await t('decode ArrayBuffer', () => new TextDecoder().decode(new Uint8Array([104, 105]).buffer));
    await t('decode DataView', () => new TextDecoder().decode(new DataView(new Uint8Array([0, 104, 105]).buffer, 1)));
    await t('decode undefined', () => new TextDecoder().decode());
    await t('decode invalid replaced', () => new TextDecoder().decode(new Uint8Array([0x61, 0xff, 0xc3, 0x62])));
    await t('decode invalid fatal', () => new TextDecoder('utf-8', { fatal: true }).decode(new Uint8Array([0xff])));
    await t('decode BOM stripped', () => new TextDecoder().decode(new Uint8Array([0xef, 0xbb, 0xbf, 0x61])).length);
    await t('decode BOM kept', () => new TextDecoder('utf-8', { ignoreBOM: true }).decode(new Uint8Array([0xef, 0xbb, 0xbf, 0x61])).length);
    await t('labels', () => ['utf8', ' UTF-8 ', 'unicode-1-1-utf-8'].map((l) => new TextDecoder(l).encoding));
    await t('unknown label', () => new TextDecoder('nope'));
    await t('fatal/ignoreBOM props', () => { const d = new TextDecoder('utf-8', { fatal: true }); return [d.fatal, d.ignoreBOM]; });
    await t('btoa', () => [btoa(''), btoa('a'), btoa('ab'), btoa('abc'), btoa('\xff\xfe')]);
    await t('btoa non-latin1', () => btoa('€'));
    await t('atob', () => [atob(''), atob('YQ=='), atob('YQ'), atob(' Y W J j '), atob('//79')]);
    await t('atob invalid', () => atob('Y'));
    await t('atob invalid char', () => atob('a*bc'));
    await t('atob no args', () => atob());
    await t('atob/btoa coercion', () => [btoa(123), atob(null)]);
    return done();
  },
};
