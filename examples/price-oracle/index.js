// Price oracle: fetches a spot price from a JSON API (Coinbase's response shape,
// {"data": {"base", "currency", "amount"}}) and returns it signed with the program's
// own derived key as an EIP-712 `PriceReport`, which a contract can check with ecrecover.
//
// Secrets: PRICE_URL (the API endpoint). The host must be on the egress allow-list.
const TYPES = {
  PriceReport: [
    { name: "pair", type: "string" },
    { name: "price", type: "uint256" }, // price * 1e8
    { name: "timestamp", type: "uint256" }, // unix seconds
  ],
};

function scaled(amount) {
  // Decimal string -> integer string with 8 decimals, without floating point.
  const [int, frac = ""] = String(amount).trim().split(".");
  if (!/^\d+$/.test(int) || !/^\d*$/.test(frac)) throw new Error(`bad amount ${amount}`);
  return (BigInt(int) * 100000000n + BigInt((frac + "00000000").slice(0, 8))).toString();
}

export default {
  async fetch(request, env) {
    const url = env.secrets.PRICE_URL;
    if (!url) return new Response("PRICE_URL secret is not set\n", { status: 500 });
    const res = await fetch(url, { headers: { accept: "application/json" } });
    if (!res.ok) return new Response(`upstream answered ${res.status}\n`, { status: 502 });
    const { data } = await res.json();
    const pair = `${data.base}-${data.currency}`;
    const report = { pair, price: scaled(data.amount), timestamp: String(Math.floor(Date.now() / 1000)) };
    const key = await env.keys.derive("oracle/price");
    const domain = { name: "PithPriceOracle", version: "1", chainId: 31337 };
    const signature = await key.signTypedData({ types: TYPES, primaryType: "PriceReport", domain, message: report });
    return Response.json({ report, domain, signer: key.address, signature });
  },
};
