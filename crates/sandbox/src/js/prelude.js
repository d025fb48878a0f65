// Pith sandbox prelude: the Web APIs and `env`, written in JavaScript over a few host
// primitives. Compiled to bytecode once per process and evaluated in every fresh
// instance before the program. The host primitives arrive on `globalThis.__pith_host`
// and are removed before any program code runs; the prelude hands its two entry points
// (`invoke`, `dispatch`) back on `globalThis.__pith_out`, which the host removes too.
//
// Authority: the primitives grant nothing beyond the public API. Every check (egress
// policy, limits, key access, kv scoping) is enforced in Rust, so a program that
// tampered its way to a primitive would gain nothing.
const h = globalThis.__pith_host;
delete globalThis.__pith_host;

const O = Object;
const freeze = O.freeze;
const defineProperty = O.defineProperty;
const PromiseC = Promise;
const MapC = Map;
const ArrayIsArray = Array.isArray;
const U8 = Uint8Array;
const AB = ArrayBuffer;
const isView = ArrayBuffer.isView;
const StringC = String;
const ErrorC = Error;
const TypeErrorC = TypeError;
const RangeErrorC = RangeError;
const JSONstringify = JSON.stringify;
const JSONparse = JSON.parse;

const hStart = h.start, hClearTimer = h.clearTimer, hLog = h.log, hRandom = h.randomBytes,
  hDigest = h.digest, hEnc = h.utf8Encode, hDec = h.utf8Decode, hAtob = h.atob, hBtoa = h.btoa,
  hUrlParse = h.urlParse, hUrlSet = h.urlSet, hNow = h.now;
// UTF-8 encoding of a JS string; lone surrogates become U+FFFD (as TextEncoder does).
const wellFormed = StringC.prototype.toWellFormed;
function utf8(s) { return hEnc(wellFormed.call(s)); }

// ---------------------------------------------------------------- async host ops
const pending = new MapC();
const timers = new MapC();
function op(name, arg) {
  return new PromiseC((resolve, reject) => {
    const id = hStart(name, arg);
    pending.set(id, [resolve, reject]);
  });
}
function makeError(e) {
  if (e === null || typeof e !== 'object' || typeof e.name !== 'string') return e;
  let err;
  if (e.name === 'TypeError') err = new TypeErrorC(e.message);
  else if (e.name === 'EgressDenied') err = new EgressDenied(e.message);
  else { err = new ErrorC(e.message); err.name = e.name; }
  return err;
}
// Called by the host when an async op completes or a timer fires.
function dispatch(id, ok, value) {
  const t = timers.get(id);
  if (t !== undefined) {
    if (t[2] > 0) {
      // interval: re-arm under the same id
      hStart('timer', [t[2], id]);
    } else {
      timers.delete(id);
    }
    t[0](...t[1]);
    return;
  }
  const p = pending.get(id);
  if (p === undefined) return;
  pending.delete(id);
  if (ok) p[0](value);
  else p[1](makeError(value));
}

// ---------------------------------------------------------------- errors
class DOMException extends ErrorC {
  #name; #code;
  constructor(message = '', name = 'Error') {
    super(StringC(message));
    this.#name = StringC(name);
    this.#code = DOM_CODES[this.#name] || 0;
  }
  get name() { return this.#name; }
  get code() { return this.#code; }
}
const DOM_CODES = { IndexSizeError: 1, HierarchyRequestError: 3, WrongDocumentError: 4,
  InvalidCharacterError: 5, NoModificationAllowedError: 7, NotFoundError: 8,
  NotSupportedError: 9, InvalidStateError: 11, SyntaxError: 12, InvalidModificationError: 13,
  NamespaceError: 14, InvalidAccessError: 15, TypeMismatchError: 17, SecurityError: 18,
  NetworkError: 19, AbortError: 20, URLMismatchError: 21, QuotaExceededError: 22,
  TimeoutError: 23, InvalidNodeTypeError: 24, DataCloneError: 25 };

class EgressDenied extends ErrorC {
  constructor(message) { super(message); }
  get name() { return 'EgressDenied'; }
}

// ---------------------------------------------------------------- bytes helpers
function toBytes(data, what) {
  if (data instanceof U8) return data;
  if (isView(data)) return new U8(data.buffer, data.byteOffset, data.byteLength);
  if (data instanceof AB) return new U8(data);
  throw new TypeErrorC(`${what}: expected an ArrayBuffer or ArrayBufferView`);
}
function copyBuffer(u8) {
  return u8.buffer.slice(u8.byteOffset, u8.byteOffset + u8.byteLength);
}

// ---------------------------------------------------------------- text
class TextEncoder {
  get encoding() { return 'utf-8'; }
  encode(input = '') { return utf8(StringC(input)); }
  encodeInto(input, dest) {
    const s = StringC(input);
    let read = 0, written = 0;
    for (const ch of s) {
      const b = utf8(ch);
      if (written + b.length > dest.length) break;
      dest.set(b, written);
      written += b.length;
      read += ch.length;
    }
    return { read, written };
  }
}
const UTF8_LABELS = ['utf-8', 'utf8', 'unicode-1-1-utf-8', 'unicode11utf8', 'unicode20utf8', 'x-unicode20utf8'];
class TextDecoder {
  #fatal; #ignoreBOM;
  constructor(label = 'utf-8', options = {}) {
    const l = StringC(label).trim().toLowerCase();
    if (!UTF8_LABELS.includes(l)) throw new RangeErrorC(`The "${label}" encoding is not supported`);
    this.#fatal = !!(options && options.fatal);
    this.#ignoreBOM = !!(options && options.ignoreBOM);
  }
  get encoding() { return 'utf-8'; }
  get fatal() { return this.#fatal; }
  get ignoreBOM() { return this.#ignoreBOM; }
  decode(input, options) {
    if (input === undefined) return '';
    const s = hDec(toBytes(input, 'TextDecoder.decode'), this.#fatal, this.#ignoreBOM);
    if (s === null) throw new TypeErrorC('The encoded data was not valid utf-8');
    return s;
  }
}

function atob(data) {
  if (arguments.length < 1) throw new TypeErrorC("atob requires 1 argument");
  const r = hAtob(StringC(data));
  if (r === null) throw new DOMException('The string to be decoded is not correctly encoded.', 'InvalidCharacterError');
  return r;
}
function btoa(data) {
  if (arguments.length < 1) throw new TypeErrorC("btoa requires 1 argument");
  const r = hBtoa(StringC(data));
  if (r === null) throw new DOMException('The string to be encoded contains characters outside of the Latin1 range.', 'InvalidCharacterError');
  return r;
}

// ---------------------------------------------------------------- URL
function formEncode(s) {
  return encodeURIComponent(s).replace(/%20/g, '+').replace(/[!'()~]/g,
    (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}
function percentDecode(s) {
  if (s.indexOf('%') < 0) return s;
  const bytes = utf8(s);
  const out = new U8(bytes.length);
  let j = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (b === 0x25 && i + 2 < bytes.length + 0 && isHex(bytes[i + 1]) && isHex(bytes[i + 2])) {
      out[j++] = parseInt(StringC.fromCharCode(bytes[i + 1], bytes[i + 2]), 16);
      i += 2;
    } else out[j++] = b;
  }
  return hDec(out.subarray(0, j), false, true);
}
function isHex(b) { return (b >= 48 && b <= 57) || (b >= 65 && b <= 70) || (b >= 97 && b <= 102); }
function parseForm(s) {
  const list = [];
  for (const part of s.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const k = eq < 0 ? part : part.slice(0, eq);
    const v = eq < 0 ? '' : part.slice(eq + 1);
    list.push([percentDecode(k.replace(/\+/g, ' ')), percentDecode(v.replace(/\+/g, ' '))]);
  }
  return list;
}

let urlUpdateSearch;
class URLSearchParams {
  #list = []; #url = null;
  constructor(init = '') {
    if (init instanceof URLSearchParams) { this.#list = init.#list.map((p) => [p[0], p[1]]); return; }
    if (init !== null && typeof init === 'object') {
      if (typeof init[Symbol.iterator] === 'function') {
        for (const pair of init) {
          const p = [...pair];
          if (p.length !== 2) throw new TypeErrorC('Each query pair must be an iterable [name, value] tuple');
          this.#list.push([StringC(p[0]), StringC(p[1])]);
        }
      } else {
        for (const k of O.keys(init)) this.#list.push([k, StringC(init[k])]);
      }
      return;
    }
    let s = StringC(init);
    if (s.startsWith('?')) s = s.slice(1);
    this.#list = parseForm(s);
  }
  static __attach(sp, url, query) { sp.#url = url; sp.#list = parseForm(query); }
  #update() { if (this.#url) urlUpdateSearch(this.#url, this.toString()); }
  get size() { return this.#list.length; }
  append(name, value) { this.#list.push([StringC(name), StringC(value)]); this.#update(); }
  delete(name, value) {
    name = StringC(name);
    this.#list = this.#list.filter((p) => !(p[0] === name && (value === undefined || p[1] === StringC(value))));
    this.#update();
  }
  get(name) { name = StringC(name); const p = this.#list.find((p) => p[0] === name); return p ? p[1] : null; }
  getAll(name) { name = StringC(name); return this.#list.filter((p) => p[0] === name).map((p) => p[1]); }
  has(name, value) {
    name = StringC(name);
    return this.#list.some((p) => p[0] === name && (value === undefined || p[1] === StringC(value)));
  }
  set(name, value) {
    name = StringC(name); value = StringC(value);
    const i = this.#list.findIndex((p) => p[0] === name);
    if (i < 0) this.#list.push([name, value]);
    else { this.#list[i][1] = value; this.#list = this.#list.filter((p, j) => j <= i || p[0] !== name); }
    this.#update();
  }
  sort() {
    // stable sort by UTF-16 code units
    this.#list = this.#list.map((p, i) => [p, i]).sort((a, b) =>
      a[0][0] < b[0][0] ? -1 : a[0][0] > b[0][0] ? 1 : a[1] - b[1]).map((x) => x[0]);
    this.#update();
  }
  forEach(cb, thisArg) { for (const [k, v] of this.#list) cb.call(thisArg, v, k, this); }
  *keys() { for (const p of this.#list) yield p[0]; }
  *values() { for (const p of this.#list) yield p[1]; }
  *entries() { for (const p of this.#list) yield [p[0], p[1]]; }
  [Symbol.iterator]() { return this.entries(); }
  toString() { return this.#list.map((p) => formEncode(p[0]) + '=' + formEncode(p[1])).join('&'); }
  get [Symbol.toStringTag]() { return 'URLSearchParams'; }
}
const attachSearch = URLSearchParams.__attach;
delete URLSearchParams.__attach;

function parseUrl(url, base) {
  return base === undefined ? hUrlParse(StringC(url)) : hUrlParse(StringC(url), StringC(base));
}
// components: [href, protocol, username, password, host, hostname, port, pathname, search, hash, origin]
class URL {
  #c; #sp = null;
  constructor(url, base) {
    const c = parseUrl(url, base);
    if (c === null) throw new TypeErrorC(`Invalid URL: ${url}`);
    this.#c = c;
  }
  static canParse(url, base) {
    return parseUrl(url, base) !== null;
  }
  static parse(url, base) { try { return new URL(url, base); } catch { return null; } }
  #set(part, v) {
    const c = hUrlSet(this.#c[0], part, StringC(v));
    if (c !== null) { this.#c = c; if (this.#sp && part !== 'search') attachSearch(this.#sp, this, this.#c[8].slice(1)); }
    else if (part === 'href') throw new TypeErrorC(`Invalid URL: ${v}`);
  }
  static __updateSearch(u, q) {
    const c = hUrlSet(u.#c[0], 'search', q);
    if (c !== null) u.#c = c;
  }
  get href() { return this.#c[0]; } set href(v) { this.#set('href', v); if (this.#sp) attachSearch(this.#sp, this, this.#c[8].slice(1)); }
  get protocol() { return this.#c[1]; } set protocol(v) { this.#set('protocol', v); }
  get username() { return this.#c[2]; } set username(v) { this.#set('username', v); }
  get password() { return this.#c[3]; } set password(v) { this.#set('password', v); }
  get host() { return this.#c[4]; } set host(v) { this.#set('host', v); }
  get hostname() { return this.#c[5]; } set hostname(v) { this.#set('hostname', v); }
  get port() { return this.#c[6]; } set port(v) { this.#set('port', v); }
  get pathname() { return this.#c[7]; } set pathname(v) { this.#set('pathname', v); }
  get search() { return this.#c[8]; }
  set search(v) { this.#set('search', v); if (this.#sp) attachSearch(this.#sp, this, this.#c[8].slice(1)); }
  get hash() { return this.#c[9]; } set hash(v) { this.#set('hash', v); }
  get origin() { return this.#c[10]; }
  get searchParams() {
    if (this.#sp === null) { this.#sp = new URLSearchParams(); attachSearch(this.#sp, this, this.#c[8].slice(1)); }
    return this.#sp;
  }
  toString() { return this.#c[0]; }
  toJSON() { return this.#c[0]; }
  get [Symbol.toStringTag]() { return 'URL'; }
}
urlUpdateSearch = URL.__updateSearch;
delete URL.__updateSearch;

// ---------------------------------------------------------------- Headers
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
function normName(name) {
  name = StringC(name);
  if (!TOKEN.test(name)) throw new TypeErrorC(`Invalid header name: ${name}`);
  return name.toLowerCase();
}
function normValue(v) {
  v = StringC(v).replace(/^[\t\n\r ]+|[\t\n\r ]+$/g, '');
  if (/[\0\r\n]/.test(v)) throw new TypeErrorC('Invalid header value');
  return v;
}
let headersList, headersFrom;
class Headers {
  #m = new MapC(); // lower-case name -> array of values
  constructor(init) {
    if (init === undefined || init === null) return;
    if (init instanceof Headers) { for (const [k, v] of init.#m) this.#m.set(k, v.slice()); return; }
    if (typeof init !== 'object') throw new TypeErrorC('Headers: init must be an object');
    if (typeof init[Symbol.iterator] === 'function') {
      for (const pair of init) {
        const p = [...pair];
        if (p.length !== 2) throw new TypeErrorC('Headers: each pair must be [name, value]');
        this.append(p[0], p[1]);
      }
    } else {
      for (const k of O.keys(init)) this.append(k, init[k]);
    }
  }
  static { headersList = (hd) => { const out = []; for (const [k, vs] of hd.#m) for (const v of vs) out.push([k, v]); return out; };
           headersFrom = (pairs) => { const hd = new Headers(); for (const [k, v] of pairs) { const a = hd.#m.get(k); if (a) a.push(v); else hd.#m.set(k, [v]); } return hd; }; }
  append(name, value) {
    const k = normName(name), v = normValue(value);
    const a = this.#m.get(k);
    if (a) a.push(v); else this.#m.set(k, [v]);
  }
  delete(name) { this.#m.delete(normName(name)); }
  get(name) { const a = this.#m.get(normName(name)); return a ? a.join(', ') : null; }
  getSetCookie() { return (this.#m.get('set-cookie') || []).slice(); }
  has(name) { return this.#m.has(normName(name)); }
  set(name, value) { this.#m.set(normName(name), [normValue(value)]); }
  forEach(cb, thisArg) { for (const [k, v] of this.entries()) cb.call(thisArg, v, k, this); }
  *entries() {
    const names = [...this.#m.keys()].sort();
    for (const k of names) {
      const vs = this.#m.get(k);
      if (vs === undefined) continue;
      if (k === 'set-cookie') { for (const v of vs) yield [k, v]; } else yield [k, vs.join(', ')];
    }
  }
  *keys() { for (const [k] of this.entries()) yield k; }
  *values() { for (const [, v] of this.entries()) yield v; }
  [Symbol.iterator]() { return this.entries(); }
  get [Symbol.toStringTag]() { return 'Headers'; }
}

// ---------------------------------------------------------------- Body
// Body storage: null | string | Uint8Array. Streams are not supported (see the crate docs).
function bodyFrom(init, headers) {
  if (init === undefined || init === null) return null;
  if (typeof init === 'string') {
    if (!headers.has('content-type')) headers.set('content-type', 'text/plain;charset=UTF-8');
    return init;
  }
  if (init instanceof URLSearchParams) {
    if (!headers.has('content-type')) headers.set('content-type', 'application/x-www-form-urlencoded;charset=UTF-8');
    return init.toString();
  }
  if (init instanceof AB) return new U8(init.slice(0));
  if (isView(init)) return new U8(init.buffer.slice(init.byteOffset, init.byteOffset + init.byteLength));
  const s = StringC(init);
  if (!headers.has('content-type')) headers.set('content-type', 'text/plain;charset=UTF-8');
  return s;
}
function bodyText(b) { return b === null ? '' : typeof b === 'string' ? b : hDec(b, false, false); }
function bodyBytes(b) { return b === null ? new U8(0) : typeof b === 'string' ? utf8(b) : b.slice(); }

// The Fetch spec's Body mixin, shared by Request and Response as a base class (as in
// workerd, where both inherit from an unexposed Body). Subclasses reach the stored body
// through `bodyOf`/`setBody`, and `checkUnused` for clone().
let bodyOf, setBody, checkUnused;
class Body {
  #body = null; #used = false;
  static {
    bodyOf = (x) => x.#body;
    setBody = (x, b) => { x.#body = b; };
    checkUnused = (x) => { if (x.#used) throw new TypeErrorC('Body has already been used'); };
  }
  get body() { return null; }
  get bodyUsed() { return this.#used; }
  #take() {
    if (this.#used) return PromiseC.reject(new TypeErrorC('Body has already been used'));
    this.#used = true;
    return null;
  }
  text() { return this.#take() || PromiseC.resolve(bodyText(this.#body)); }
  json() { return this.#take() || PromiseC.resolve().then(() => JSONparse(bodyText(this.#body))); }
  arrayBuffer() { return this.#take() || PromiseC.resolve(copyBuffer(bodyBytes(this.#body))); }
  bytes() { return this.#take() || PromiseC.resolve(bodyBytes(this.#body)); }
}

let responseParts, makeResponse, requestParts;
class Response extends Body {
  #status; #statusText; #headers; #url = ''; #redirected = false; #type = 'default';
  constructor(body = null, init = undefined) {
    super();
    let status = 200, statusText = '', headers;
    if (init !== undefined && init !== null) {
      if (init.status !== undefined) status = init.status | 0;
      if (init.statusText !== undefined) statusText = StringC(init.statusText);
      headers = init.headers instanceof Headers ? new Headers(init.headers) : new Headers(init.headers);
    } else headers = new Headers();
    if (status < 200 || status > 599) throw new RangeErrorC(`Responses may only be constructed with status codes in the range 200 to 599, inclusive.`);
    this.#status = status; this.#statusText = statusText; this.#headers = headers;
    if (body !== null && body !== undefined && (status === 101 || status === 204 || status === 205 || status === 304))
      throw new TypeErrorC('Response with null body status cannot have body');
    setBody(this, bodyFrom(body, headers));
  }
  static {
    responseParts = (r) => {
      return [r.#status, headersList(r.#headers), bodyOf(r)];
    };
    makeResponse = (status, statusText, headerPairs, body, url, redirected) => {
      const r = new Response(null, { status: status < 200 ? 200 : status });
      r.#status = status; r.#statusText = statusText; r.#headers = headersFrom(headerPairs);
      setBody(r, body); r.#url = url; r.#redirected = redirected; r.#type = 'basic';
      return r;
    };
  }
  static json(data, init) {
    const hd = new Headers(init && init.headers);
    if (!hd.has('content-type')) hd.set('content-type', 'application/json');
    return new Response(JSONstringify(data), { status: init && init.status, statusText: init && init.statusText, headers: hd });
  }
  static redirect(url, status = 302) {
    if (![301, 302, 303, 307, 308].includes(status)) throw new RangeErrorC('Invalid redirect status');
    return new Response(null, { status, headers: { location: new URL(url).href } });
  }
  static error() { const r = new Response(null, { status: 200 }); r.#status = 0; r.#type = 'error'; return r; }
  get status() { return this.#status; }
  get statusText() { return this.#statusText; }
  get ok() { return this.#status >= 200 && this.#status <= 299; }
  get headers() { return this.#headers; }
  get url() { return this.#url; }
  get redirected() { return this.#redirected; }
  get type() { return this.#type; }
  clone() {
    checkUnused(this);
    return makeResponse(this.#status, this.#statusText, headersList(this.#headers), bodyOf(this), this.#url, this.#redirected);
  }
  get [Symbol.toStringTag]() { return 'Response'; }
}

// Normalised to upper case (Fetch spec); other methods, PATCH included, keep their case.
const METHODS = ['DELETE', 'GET', 'HEAD', 'OPTIONS', 'POST', 'PUT'];
class Request extends Body {
  #method; #url; #headers; #redirect = 'follow';
  constructor(input, init = undefined) {
    super();
    if (input instanceof Request) {
      this.#method = input.#method; this.#url = input.#url;
      this.#headers = new Headers(input.#headers); setBody(this, bodyOf(input)); this.#redirect = input.#redirect;
    } else {
      this.#url = new URL(StringC(input)).href;
      this.#method = 'GET'; this.#headers = new Headers();
    }
    if (init !== undefined && init !== null) {
      if (init.method !== undefined) {
        const m = StringC(init.method);
        const up = m.toUpperCase();
        if (!TOKEN.test(m)) throw new TypeErrorC(`Invalid method: ${m}`);
        this.#method = METHODS.includes(up) ? up : m;
      }
      if (init.headers !== undefined) this.#headers = new Headers(init.headers);
      if (init.redirect !== undefined) this.#redirect = StringC(init.redirect);
      if (init.body !== undefined && init.body !== null) {
        if (this.#method === 'GET' || this.#method === 'HEAD') throw new TypeErrorC('Request with GET/HEAD method cannot have body.');
        setBody(this, bodyFrom(init.body, this.#headers));
      }
    }
  }
  static {
    requestParts = (r) => { const b = bodyOf(r); return [r.#method, r.#url, headersList(r.#headers), b === null ? null : bodyBytes(b), r.#redirect]; };
  }
  get method() { return this.#method; }
  get url() { return this.#url; }
  get headers() { return this.#headers; }
  get redirect() { return this.#redirect; }
  clone() {
    checkUnused(this);
    return new Request(this);
  }
  get [Symbol.toStringTag]() { return 'Request'; }
}

function fetch(input, init) {
  let parts;
  try {
    parts = requestParts(new Request(input, init));
  } catch (e) {
    return PromiseC.reject(e);
  }
  return op('fetch', parts).then((r) =>
    makeResponse(r[0], r[1], r[2], r[3], r[4], r[5]));
}

// ---------------------------------------------------------------- crypto
const INT_ARRAYS = [Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array, BigInt64Array, BigUint64Array];
function getRandomValues(ta) {
  if (!INT_ARRAYS.some((C) => ta instanceof C)) throw new DOMException('The data argument must be an integer-type TypedArray', 'TypeMismatchError');
  if (ta.byteLength > 65536) throw new DOMException(`The ArrayBufferView's byte length (${ta.byteLength}) exceeds the number of bytes of entropy available via this API (65536)`, 'QuotaExceededError');
  new U8(ta.buffer, ta.byteOffset, ta.byteLength).set(hRandom(ta.byteLength));
  return ta;
}
const HEX = [];
for (let i = 0; i < 256; i++) HEX.push((i < 16 ? '0' : '') + i.toString(16));
function randomUUID() {
  const b = hRandom(16);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  let s = '';
  for (let i = 0; i < 16; i++) { s += HEX[b[i]]; if (i === 3 || i === 5 || i === 7 || i === 9) s += '-'; }
  return s;
}
const DIGESTS = { 'SHA-1': 'SHA-1', 'SHA-256': 'SHA-256', 'SHA-384': 'SHA-384', 'SHA-512': 'SHA-512' };
const subtle = freeze({
  digest(algorithm, data) {
    try {
      const name = typeof algorithm === 'string' ? algorithm : algorithm && algorithm.name;
      const alg = DIGESTS[StringC(name).toUpperCase()];
      if (alg === undefined) throw new DOMException('Unrecognized name.', 'NotSupportedError');
      return PromiseC.resolve(hDigest(alg, toBytes(data, 'digest')));
    } catch (e) {
      return PromiseC.reject(e);
    }
  },
});
const crypto = freeze({ getRandomValues, randomUUID, subtle });

// ---------------------------------------------------------------- console
// Formats values the way workerd's (and Node's) console does for the common cases: strings
// quoted inside containers, `-0`, `[]`, `[Function: f]`, `[class K]`, nesting beyond depth 2
// shown as `[Object]`/`[Array]`. Not reproduced: line breaking of long output, colours.
const IDENT = /^[A-Za-z_][A-Za-z_0-9]*$/;
const ESC = { '\b': '\\b', '\t': '\\t', '\n': '\\n', '\f': '\\f', '\r': '\\r', '\\': '\\\\' };
function quote(s) {
  let q = "'";
  if (s.includes("'")) { if (!s.includes('"')) q = '"'; else if (!s.includes('`') && !s.includes('${')) q = '`'; }
  return q + s.replace(/[\x00-\x1f\x7f\\]/g, (c) => ESC[c] || '\\x' + c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0'))
    .split(q).join('\\' + q) + q;
}
function inspect(v, depth, seen) {
  if (typeof v === 'string') return depth === 0 ? v : quote(v);
  if (typeof v === 'number') return O.is(v, -0) ? '-0' : StringC(v);
  if (typeof v === 'function') {
    if (/^class[\s{]/.test(Function.prototype.toString.call(v))) return `[class ${v.name || '(anonymous)'}]`;
    return v.name ? `[Function: ${v.name}]` : '[Function (anonymous)]';
  }
  if (typeof v === 'symbol' || typeof v === 'bigint') return v.toString() + (typeof v === 'bigint' ? 'n' : '');
  if (v === null || typeof v !== 'object') return StringC(v);
  if (v instanceof ErrorC) return v.stack ? `${v.name}: ${v.message}\n${v.stack}`.trimEnd() : `${v.name}: ${v.message}`;
  if (seen.includes(v)) return '[Circular *1]';
  if (depth > 2) return ArrayIsArray(v) ? '[Array]' : '[Object]';
  seen = seen.concat([v]);
  const inner = (x) => inspect(x, depth + 1, seen);
  const list = (items, open, close) => (items.length === 0 ? open + close : `${open} ${items.join(', ')} ${close}`);
  if (ArrayIsArray(v)) return list(v.map(inner), '[', ']');
  if (v instanceof MapC) return `Map(${v.size}) ` + list([...v].map(([k, x]) => `${inner(k)} => ${inner(x)}`), '{', '}');
  if (v instanceof Set) return `Set(${v.size}) ` + list([...v].map(inner), '{', '}');
  if (isView(v) && !(v instanceof DataView)) return `${v.constructor.name}(${v.length}) ` + list([...v].map(inner), '[', ']');
  const keys = O.keys(v);
  return list(keys.map((k) => `${IDENT.test(k) ? k : quote(k)}: ${inner(v[k])}`), '{', '}');
}
function safeInspect(v) { try { return inspect(v, 0, []); } catch { return '[uninspectable]'; } }
// printf-style directives when the first argument is a string (%s %d %i %f %j %o %O %c %%).
function substitute(fmt, args) {
  let next = 1;
  const out = fmt.replace(/%[sdifjoOc%]/g, (d) => {
    if (d === '%%') return '%';
    if (next >= args.length) return d;
    const a = args[next++];
    try {
      switch (d) {
        case '%s': return typeof a === 'bigint' ? `${a}n` : typeof a === 'object' && a !== null ? inspect(a, 1, []) : typeof a === 'symbol' ? a.toString() : StringC(a);
        case '%d': return typeof a === 'bigint' ? `${a}n` : typeof a === 'object' ? 'NaN' : inspect(Number(a), 0, []);
        case '%i': return typeof a === 'bigint' ? `${a}n` : typeof a === 'object' ? 'NaN' : StringC(parseInt(a));
        case '%f': return typeof a === 'symbol' ? 'NaN' : StringC(parseFloat(a));
        case '%j': return JSONstringify(a);
        case '%c': return '';
        case '%o': // Node's showHidden view; reproduced for arrays (their hidden `length`)
          if (ArrayIsArray(a)) return `[ ${a.map((x) => inspect(x, 1, [a])).concat([`[length]: ${a.length}`]).join(', ')} ]`;
          return inspect(a, 1, []);
        default: return inspect(a, 1, []);
      }
    } catch { return '[uninspectable]'; }
  });
  return [out, next];
}
function formatArgs(args) {
  let s = '', i = 0;
  if (typeof args[0] === 'string' && args.length > 1) [s, i] = substitute(args[0], args);
  for (; i < args.length; i++) {
    if (s !== '' || i > 0) s += ' ';
    s += safeInspect(args[i]);
  }
  return s;
}
function level(l) { return (...args) => { hLog(l, formatArgs(args)); }; }
const console = freeze({
  log: level('log'), info: level('info'), warn: level('warn'), error: level('error'),
  debug: level('debug'), trace: level('debug'),
});

// ---------------------------------------------------------------- timers
function setTimeout(fn, ms = 0, ...args) {
  if (typeof fn !== 'function') throw new TypeErrorC('setTimeout: callback must be a function');
  const d = Math.max(0, +ms || 0);
  const id = hStart('timer', [d, 0]);
  timers.set(id, [fn, args, 0]);
  return id;
}
function setInterval(fn, ms = 0, ...args) {
  if (typeof fn !== 'function') throw new TypeErrorC('setInterval: callback must be a function');
  const d = Math.max(1, +ms || 0);
  const id = hStart('timer', [d, 0]);
  timers.set(id, [fn, args, d]);
  return id;
}
function clearTimeout(id) {
  if (timers.delete(id)) hClearTimer(id);
}

// ---------------------------------------------------------------- structuredClone
function structuredClone(value, options) {
  const seen = new MapC();
  const clone = (v) => {
    if (v === null || (typeof v !== 'object' && typeof v !== 'function' && typeof v !== 'symbol')) return v;
    if (typeof v === 'function') throw new DOMException(`${inspect(v, 0, [])} could not be cloned.`, 'DataCloneError');
    if (typeof v === 'symbol') throw new DOMException(`${v.toString()} could not be cloned.`, 'DataCloneError');
    if (seen.has(v)) return seen.get(v);
    let out;
    if (ArrayIsArray(v)) { out = new Array(v.length); seen.set(v, out); for (const k of O.keys(v)) out[k] = clone(v[k]); return out; }
    if (v instanceof DateC) out = new DateC(v.getTime());
    else if (v instanceof RegExp) out = new RegExp(v.source, v.flags);
    else if (v instanceof AB) out = v.slice(0);
    else if (isView(v)) {
      const buf = clone(v.buffer);
      out = v instanceof DataView ? new DataView(buf, v.byteOffset, v.byteLength) : new v.constructor(buf, v.byteOffset, v.length);
    } else if (v instanceof MapC) { out = new MapC(); seen.set(v, out); for (const [k, x] of v) out.set(clone(k), clone(x)); return out; }
    else if (v instanceof Set) { out = new Set(); seen.set(v, out); for (const x of v) out.add(clone(x)); return out; }
    else if (v instanceof ErrorC) { out = new ErrorC(v.message); out.name = v.name; if (v.stack) out.stack = v.stack; }
    else if (v instanceof Boolean || v instanceof Number || v instanceof StringC) out = O(v.valueOf());
    else if (v instanceof PromiseC || v instanceof WeakMap || v instanceof WeakSet) throw new DOMException(`#<${v.constructor.name}> could not be cloned.`, 'DataCloneError');
    else {
      out = {}; seen.set(v, out);
      for (const k of O.keys(v)) out[k] = clone(v[k]);
      return out;
    }
    seen.set(v, out);
    return out;
  };
  return clone(value);
}

// ---------------------------------------------------------------- env
function bytesArg(b, what) {
  if (typeof b === 'string') return utf8(b);
  return toBytes(b, what).slice();
}
function hexOf(u8) { let s = '0x'; for (let i = 0; i < u8.length; i++) s += HEX[u8[i]]; return s; }
function makeEnv(secrets, programId, codeHash) {
  const kv = freeze({
    get(key, type) {
      const t = typeof type === 'object' && type !== null ? type.type : type;
      return op('kv_get', StringC(key)).then((v) => {
        if (v === null) return null;
        if (t === 'arrayBuffer') return copyBuffer(v);
        if (t === 'bytes') return v;
        const s = hDec(v, false, false);
        return t === 'json' ? JSONparse(s) : s;
      });
    },
    put(key, value) {
      let bytes;
      try { bytes = bytesArg(value, 'kv.put'); } catch (e) { return PromiseC.reject(e); }
      return op('kv_put', [StringC(key), bytes]).then(() => undefined);
    },
    delete(key) { return op('kv_delete', StringC(key)).then(() => undefined); },
    list(options = {}) {
      const o = options || {};
      return op('kv_list', [o.prefix === undefined ? '' : StringC(o.prefix), o.limit === undefined ? 1000 : o.limit | 0,
        o.cursor === undefined || o.cursor === null ? '' : StringC(o.cursor)])
        .then((r) => (r[1] === '' ? { keys: r[0].map((name) => ({ name })), list_complete: true, cacheStatus: null }
          : { keys: r[0].map((name) => ({ name })), list_complete: false, cursor: r[1], cacheStatus: null }));
    },
  });
  const keys = freeze({
    derive(path) {
      const p = StringC(path);
      return op('derive', p).then((r) => freeze({
        path: p,
        publicKey: r[0],
        address: r[1],
        sign(bytes) {
          let b;
          try { b = bytesArg(bytes, 'sign'); } catch (e) { return PromiseC.reject(e); }
          return op('sign', [p, b]);
        },
        signTypedData(typedData) {
          let s;
          try { s = JSONstringify(typedData); } catch (e) { return PromiseC.reject(e); }
          return op('sign_typed_data', [p, s]);
        },
      }));
    },
  });
  const chain = freeze({
    call(tx) { return op('eth_call', JSONstringify(tx)); },
    sendTransaction(tx) { return op('send_transaction', JSONstringify(tx)); },
  });
  const ai = freeze({
    // {messages, max_tokens, temperature, top_p, seed, stop, model} -> {message, finish_reason, usage, model, model_hash}
    chat(request) {
      let s;
      try { s = JSONstringify(request); } catch (e) { return PromiseC.reject(e); }
      if (typeof s !== 'string') return PromiseC.reject(new TypeErrorC('env.ai.chat: a request object'));
      return op('ai_chat', s).then((r) => JSONparse(r));
    },
  });
  return freeze({
    secrets: freeze(O.assign(O.create(null), secrets)),
    kv, keys, chain, ai,
    program: freeze({ id: programId, codeHash }),
    attestation(reportData) {
      let b;
      try { b = bytesArg(reportData, 'attestation'); } catch (e) { return PromiseC.reject(e); }
      return op('attestation', b);
    },
  });
}

// ---------------------------------------------------------------- invocation
let env = null;
const waitUntil = [];
const ctx = freeze({
  waitUntil(p) { waitUntil.push(PromiseC.resolve(p).catch(() => {})); },
  passThroughOnException() {},
});
function describe(e) {
  try {
    if (e instanceof ErrorC || (e !== null && typeof e === 'object' && 'message' in e)) {
      const name = StringC(e.name);
      const stack = typeof e.stack === 'string' ? e.stack : '';
      return [name, `${name}: ${StringC(e.message)}${stack ? '\n' + stack.trimEnd() : ''}`];
    }
    return ['', `Uncaught ${inspect(e, 0, [])}`];
  } catch {
    return ['', 'Uncaught exception (could not be described)'];
  }
}
async function invoke(handler, method, url, headerPairs, body) {
  const req = new Request(url, { method, headers: headersFrom(headerPairs), body: body === null ? undefined : body });
  const res = await handler.fetch(req, env, ctx);
  if (!(res instanceof Response)) throw new TypeErrorC('The handler did not return a Response');
  return responseParts(res);
}
function setup(secrets, programId, codeHash) { env = makeEnv(secrets, programId, codeHash); }

globalThis.__pith_out = { invoke, dispatch, describe, setup };

// ---------------------------------------------------------------- globals
const G = { DOMException, EgressDenied, TextEncoder, TextDecoder, atob, btoa, URL, URLSearchParams,
  Headers, Request, Response, fetch, crypto, console, setTimeout, clearTimeout, setInterval,
  clearInterval: clearTimeout, structuredClone };
for (const k of O.keys(G)) defineProperty(globalThis, k, { value: G[k], writable: true, configurable: true, enumerable: false });
if (typeof globalThis.queueMicrotask !== 'function') {
  defineProperty(globalThis, 'queueMicrotask', { value: (fn) => { PromiseC.resolve().then(fn); }, writable: true, configurable: true });
}
defineProperty(globalThis, 'self', { value: globalThis, writable: true, configurable: true });
// Date reads the host's Clock: `Date.now()`, `new Date()` and `Date()` (the other forms
// take explicit times and need no clock). Date.prototype is shared, so `instanceof Date`,
// subclasses and `date.constructor === Date` behave as before.
const DateC = Date;
const construct = Reflect.construct;
function PithDate(...args) {
  if (new.target === undefined) return new DateC(hNow()).toString();
  return construct(DateC, args.length === 0 ? [hNow()] : args, new.target);
}
defineProperty(PithDate, 'name', { value: 'Date' });
defineProperty(PithDate, 'length', { value: 7 });
defineProperty(PithDate, 'prototype', { value: DateC.prototype, writable: false, enumerable: false, configurable: false });
defineProperty(DateC.prototype, 'constructor', { value: PithDate, writable: true, enumerable: false, configurable: true });
for (const k of ['parse', 'UTC']) defineProperty(PithDate, k, { value: DateC[k], writable: true, enumerable: false, configurable: true });
defineProperty(PithDate, 'now', { value: function now() { return hNow(); }, writable: true, enumerable: false, configurable: true });
defineProperty(globalThis, 'Date', { value: PithDate, writable: true, enumerable: false, configurable: true });
