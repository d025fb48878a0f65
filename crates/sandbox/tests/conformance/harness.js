// Prepended to every conformance program (web/*.js, pith/*.js) before it runs in workerd
// and in the Pith sandbox. `t(name, fn)` records what `fn` returns (or the name of what
// it throws) in a form that is the same in both runtimes: JSON with typed arrays, buffers,
// undefined, bigint, NaN and -0 spelled out. Error messages differ between engines (V8 vs
// QuickJS), so only error names are compared.
const __results = [];
function show(v, seen = []) {
  if (v === undefined) return '<undefined>';
  if (typeof v === 'bigint') return `<bigint ${v}>`;
  if (typeof v === 'number') return Object.is(v, -0) ? '<-0>' : Number.isNaN(v) ? '<NaN>' : !Number.isFinite(v) ? `<${v}>` : v;
  if (typeof v === 'function') return `<function ${v.name}>`;
  if (typeof v === 'symbol') return `<${v.toString()}>`;
  if (v === null || typeof v !== 'object') return v;
  if (seen.includes(v)) return '<circular>';
  seen = seen.concat([v]);
  if (v instanceof ArrayBuffer) return { ArrayBuffer: [...new Uint8Array(v)] };
  if (ArrayBuffer.isView(v)) return { [v.constructor.name]: v instanceof DataView ? [...new Uint8Array(v.buffer, v.byteOffset, v.byteLength)] : [...v].map((x) => show(x)) };
  if (v instanceof Error) return { error: v.name };
  if (Array.isArray(v)) return v.map((x) => show(x, seen));
  if (v instanceof Map) return { Map: [...v].map(([k, x]) => [show(k, seen), show(x, seen)]) };
  if (v instanceof Set) return { Set: [...v].map((x) => show(x, seen)) };
  if (v instanceof Date) return { Date: v.getTime() };
  if (v instanceof RegExp) return { RegExp: String(v) };
  const o = {};
  for (const k of Object.keys(v)) o[k] = show(v[k], seen);
  return o;
}
function errName(e) {
  if (e === null || typeof e !== 'object') return `throws ${typeof e}`;
  return `throws ${e.name}${e instanceof DOMException ? ` (DOMException)` : e instanceof TypeError ? ' (TypeError)' : e instanceof RangeError ? ' (RangeError)' : e instanceof SyntaxError ? ' (SyntaxError)' : ''}`;
}
async function t(name, fn) {
  try {
    __results.push([name, show(await fn())]);
  } catch (e) {
    __results.push([name, errName(e)]);
  }
}
function done() {
  return new Response(JSON.stringify(__results, null, 1), { headers: { 'content-type': 'application/json' } });
}
