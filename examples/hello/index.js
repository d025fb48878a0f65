// The smallest Pith program: answers every request with a greeting.
export default {
  async fetch(request) {
    const name = new URL(request.url).searchParams.get("name") ?? "world";
    return new Response(`hello, ${name}\n`, { headers: { "content-type": "text/plain" } });
  },
};
