// __NAME__: a Pith agent. It runs by itself on its triggers — a cron schedule and/or on-chain
// events — set by its owner:
//
//   pith deploy . --fund 0.1 --cron "*/30 * * * * *" --on-event 0xCONTRACT:Transfer(address,address,uint256)
//   pith programs triggers ID --cron "0 * * * * *"          (change them later)
//
// Each firing runs once on the whole network (one worker claims it) and calls this program with
// POST /.pith/agent, header `pith-trigger` (`cron` or `event`) and a JSON body:
//   cron:  {"trigger": "cron", "firing": "cron:<unix s>", "scheduledTime": <ms>, "events": [...]}
//   event: {"trigger": "event", "firing": "event:<block>:<tx>:<index>",
//           "event": {"address", "topics", "data", "blockNumber", "transactionHash", "logIndex"}}
// `pith-*` headers never come from users (the worker strips them), so they can be trusted.
//
// What an agent has: env.kv (state that survives), env.ai.chat (the worker's own model),
// env.chain.call / env.chain.sendTransaction (from the program's own address: fund it),
// env.keys, env.secrets, fetch (egress allow-list). Make on-chain actions idempotent: a firing
// runs at most once, but a later firing may see work an earlier one left half done.

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const trigger = request.headers.get("pith-trigger");
    if (url.pathname === "/.pith/agent" && trigger) {
      const firing = await request.json();
      const n = Number((await env.kv.get("firings")) ?? "0") + 1;
      await env.kv.put("firings", String(n));
      await env.kv.put("last", JSON.stringify({ firing: firing.firing, trigger }));
      if (trigger === "event") {
        console.log(`event ${firing.firing} from ${firing.event.address}`);
        // React to the event here (decode firing.event.data, ask env.ai, send a transaction).
      } else {
        console.log(`tick ${firing.firing}`);
        // Periodic work here.
      }
      return Response.json({ ok: true, firings: n });
    }
    // Anyone may ask what the agent has done.
    return Response.json({
      firings: Number((await env.kv.get("firings")) ?? "0"),
      last: JSON.parse((await env.kv.get("last")) ?? "null"),
    });
  },
};
