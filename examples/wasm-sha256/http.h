/* The few wasi:http 0.2 functions this example needs, declared in their canonical-ABI
 * core-wasm form (what wit-bindgen would generate for the world `pith:host/app`, written
 * out by hand to keep the build to clang + wasm-tools). Return values that do not fit in
 * one core value are written to a caller-provided return area (`ret`, 8-byte aligned). */
#ifndef PITH_HTTP_H
#define PITH_HTTP_H
#include <stddef.h>
#include <stdint.h>

#define WASI_HTTP(n) __attribute__((import_module("wasi:http/types@0.2.12"), import_name(n)))
#define WASI_IO(n) __attribute__((import_module("wasi:io/streams@0.2.12"), import_name(n)))

typedef int32_t handle_t;

WASI_HTTP("[constructor]fields") handle_t fields_new(void);
WASI_HTTP("[method]fields.append")
void fields_append(handle_t self, const char *name, size_t name_len, const uint8_t *value, size_t value_len, void *ret);
WASI_HTTP("[constructor]outgoing-response") handle_t outgoing_response_new(handle_t headers);
WASI_HTTP("[method]outgoing-response.set-status-code") int32_t outgoing_response_set_status_code(handle_t self, int32_t status);
WASI_HTTP("[method]outgoing-response.body") void outgoing_response_body(handle_t self, void *ret);
WASI_HTTP("[method]outgoing-body.write") void outgoing_body_write(handle_t self, void *ret);
WASI_HTTP("[static]outgoing-body.finish")
void outgoing_body_finish(handle_t body, int32_t has_trailers, handle_t trailers, void *ret);
/* result<outgoing-response, error-code> flattened: discriminant, then the joined payload. */
WASI_HTTP("[static]response-outparam.set")
void response_outparam_set(handle_t param, int32_t is_err, int32_t p0, int32_t p1, int64_t p2, int32_t p3, int32_t p4,
                           int32_t p5, int32_t p6);
WASI_HTTP("[method]incoming-request.method") void incoming_request_method(handle_t self, void *ret);
WASI_HTTP("[method]incoming-request.path-with-query") void incoming_request_path_with_query(handle_t self, void *ret);
WASI_HTTP("[method]incoming-request.consume") void incoming_request_consume(handle_t self, void *ret);
WASI_HTTP("[method]incoming-body.stream") void incoming_body_stream(handle_t self, void *ret);
WASI_IO("[method]input-stream.blocking-read") void input_stream_blocking_read(handle_t self, int64_t len, void *ret);
WASI_IO("[method]output-stream.blocking-write-and-flush")
void output_stream_blocking_write_and_flush(handle_t self, const uint8_t *data, size_t len, void *ret);
WASI_IO("[resource-drop]output-stream") void output_stream_drop(handle_t self);

/* wasi:http/types.method discriminants used here. */
enum { METHOD_GET = 0, METHOD_POST = 2 };

#endif
