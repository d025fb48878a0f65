/* A compute-heavy Pith WASM program: SHA-256 as a wasi:http/proxy component.
 *
 *   GET  /sha      SHA-256 of a fixed 1 MiB buffer (bytes 0, 1, ..., 255, 0, ...): the
 *                  benchmark kernel, the same work as the native and JavaScript baselines
 *   POST /...      SHA-256 of the request body
 *   anything else  404
 *
 * Answers the lowercase hex digest with `content-type: text/plain` and
 * `x-digest-bytes: N` (bytes hashed), and logs one line on stdout (through wasi-libc's
 * printf and the WASI preview-1 adapter). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "sha256.h"

/* The canonical ABI allocates lists and strings returned by the host through this. */
__attribute__((export_name("cabi_realloc"))) void *cabi_realloc(void *old, size_t old_size, size_t align, size_t new_size) {
    (void)old_size;
    (void)align; /* malloc's 16-byte alignment covers every canonical-ABI type */
    if (new_size == 0) return (void *)align;
    void *p = realloc(old, new_size);
    if (!p) abort();
    return p;
}

static _Alignas(8) uint8_t ret[64];

static void respond(handle_t out, int status, const char *body, size_t bytes_hashed) {
    handle_t headers = fields_new();
    static const char ct[] = "text/plain";
    fields_append(headers, "content-type", 12, (const uint8_t *)ct, sizeof ct - 1, ret);
    char n[24];
    int nlen = snprintf(n, sizeof n, "%zu", bytes_hashed);
    fields_append(headers, "x-digest-bytes", 14, (const uint8_t *)n, (size_t)nlen, ret);
    handle_t resp = outgoing_response_new(headers);
    outgoing_response_set_status_code(resp, status);
    outgoing_response_body(resp, ret);
    if (ret[0]) abort();
    handle_t body_h = *(int32_t *)(ret + 4);
    outgoing_body_write(body_h, ret);
    if (ret[0]) abort();
    handle_t stream = *(int32_t *)(ret + 4);
    response_outparam_set(out, 0, resp, 0, 0, 0, 0, 0, 0);
    output_stream_blocking_write_and_flush(stream, (const uint8_t *)body, strlen(body), ret);
    if (ret[0]) abort();
    output_stream_drop(stream);
    outgoing_body_finish(body_h, 0, 0, ret);
    if (ret[0]) abort();
}

static void hex(const uint8_t d[32], char out[65]) {
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = digits[d[i] >> 4];
        out[2 * i + 1] = digits[d[i] & 15];
    }
    out[64] = 0;
}

/* SHA-256 of the request body, read in chunks. */
static size_t hash_body(handle_t req, uint8_t digest[32]) {
    incoming_request_consume(req, ret);
    if (ret[0]) abort();
    handle_t body = *(int32_t *)(ret + 4);
    incoming_body_stream(body, ret);
    if (ret[0]) abort();
    handle_t in = *(int32_t *)(ret + 4);
    sha256_ctx c;
    sha256_init(&c);
    size_t total = 0;
    for (;;) {
        input_stream_blocking_read(in, 64 * 1024, ret);
        if (ret[0]) break; /* closed: end of body */
        uint8_t *p = *(uint8_t **)(ret + 4);
        size_t len = *(uint32_t *)(ret + 8);
        sha256_update(&c, p, len);
        total += len;
        free(p);
    }
    sha256_final(&c, digest);
    return total;
}

__attribute__((export_name("wasi:http/incoming-handler@0.2.12#handle"))) void handle(handle_t req, handle_t out) {
    incoming_request_method(req, ret);
    int method = ret[0];
    incoming_request_path_with_query(req, ret);
    char path[256] = "/";
    if (ret[0]) {
        size_t len = *(uint32_t *)(ret + 8);
        if (len >= sizeof path) len = sizeof path - 1;
        memcpy(path, *(char **)(ret + 4), len);
        path[len] = 0;
    }
    uint8_t digest[32];
    size_t n;
    if (method == METHOD_GET && strcmp(path, "/sha") == 0) {
        static uint8_t buf[1 << 20];
        for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)i;
        sha256(buf, sizeof buf, digest);
        n = sizeof buf;
    } else if (method == METHOD_POST) {
        n = hash_body(req, digest);
    } else {
        respond(out, 404, "not found: GET /sha or POST a body\n", 0);
        return;
    }
    char h[66];
    hex(digest, h);
    printf("sha256 of %zu bytes: %s\n", n, h);
    fflush(stdout);
    respond(out, 200, h, n);
}
