;; Shared part of the hand-written test components (crates/sandbox/tests/wasm.rs): the
;; wasi:http 0.2 imports in their canonical-ABI core form, a bump allocator, and helpers
;; that answer a request. Memory layout: 0..1024 scratch for return areas, 1024.. data
;; segments of the test, 65536.. heap (`cabi_realloc`). A test component file
;; (tests/wasm/*.wat) has its imports, a line `;; ---- body ----`, then its definitions;
;; the imports go at the marker below and the definitions after the prelude.
(module
  (import "wasi:http/types@0.2.12" "[constructor]fields" (func $fields_new (result i32)))
  (import "wasi:http/types@0.2.12" "[method]fields.append" (func $fields_append (param i32 i32 i32 i32 i32 i32)))
  (import "wasi:http/types@0.2.12" "[method]fields.get" (func $fields_get (param i32 i32 i32 i32)))
  (import "wasi:http/types@0.2.12" "[constructor]outgoing-response" (func $resp_new (param i32) (result i32)))
  (import "wasi:http/types@0.2.12" "[method]outgoing-response.set-status-code" (func $set_status (param i32 i32) (result i32)))
  (import "wasi:http/types@0.2.12" "[method]outgoing-response.body" (func $resp_body (param i32 i32)))
  (import "wasi:http/types@0.2.12" "[method]outgoing-body.write" (func $body_write (param i32 i32)))
  (import "wasi:http/types@0.2.12" "[static]outgoing-body.finish" (func $body_finish (param i32 i32 i32 i32)))
  (import "wasi:http/types@0.2.12" "[static]response-outparam.set" (func $outparam_set (param i32 i32 i32 i32 i64 i32 i32 i32 i32)))
  (import "wasi:io/streams@0.2.12" "[method]output-stream.blocking-write-and-flush" (func $write (param i32 i32 i32 i32)))
  (import "wasi:io/streams@0.2.12" "[resource-drop]output-stream" (func $drop_stream (param i32)))
;; ---- test imports ----
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 65536))
  (global $body (mut i32) (i32.const 0))

  (func $cabi_realloc (export "cabi_realloc") (param $old i32) (param $old_len i32) (param $align i32) (param $len i32) (result i32)
    (local $p i32) (local $have i32)
    (local.set $p (i32.and (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
                           (i32.xor (i32.sub (local.get $align) (i32.const 1)) (i32.const -1))))
    (global.set $heap (i32.add (local.get $p) (local.get $len)))
    (local.set $have (i32.mul (memory.size) (i32.const 65536)))
    (if (i32.gt_u (global.get $heap) (local.get $have))
      (then (if (i32.lt_s (memory.grow (i32.add (i32.shr_u (i32.sub (global.get $heap) (local.get $have)) (i32.const 16)) (i32.const 1))) (i32.const 0))
        (then unreachable))))
    (if (local.get $old_len) (then (memory.copy (local.get $p) (local.get $old) (local.get $old_len))))
    (local.get $p))

  ;; Start a response with `status` and `headers` (a fields handle); returns the body stream.
  (func $start (param $out i32) (param $status i32) (param $headers i32) (result i32)
    (local $resp i32)
    (local.set $resp (call $resp_new (local.get $headers)))
    (drop (call $set_status (local.get $resp) (local.get $status)))
    (call $resp_body (local.get $resp) (i32.const 0))
    (if (i32.load8_u (i32.const 0)) (then unreachable))
    (global.set $body (i32.load (i32.const 4)))
    (call $body_write (global.get $body) (i32.const 0))
    (if (i32.load8_u (i32.const 0)) (then unreachable))
    (call $outparam_set (local.get $out) (i32.const 0) (local.get $resp) (i32.const 0) (i64.const 0)
      (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))
    (i32.load (i32.const 4)))

  ;; Write `len` bytes at `ptr` to the body stream, 4096 bytes per call.
  (func $write_all (param $stream i32) (param $ptr i32) (param $len i32)
    (local $n i32)
    (block $done
      (loop $more
        (br_if $done (i32.eqz (local.get $len)))
        (local.set $n (select (i32.const 4096) (local.get $len) (i32.gt_u (local.get $len) (i32.const 4096))))
        (call $write (local.get $stream) (local.get $ptr) (local.get $n) (i32.const 0))
        (if (i32.load8_u (i32.const 0)) (then unreachable))
        (local.set $ptr (i32.add (local.get $ptr) (local.get $n)))
        (local.set $len (i32.sub (local.get $len) (local.get $n)))
        (br $more))))

  ;; Close the body stream and finish the body.
  (func $finish (param $stream i32)
    (call $drop_stream (local.get $stream))
    (call $body_finish (global.get $body) (i32.const 0) (i32.const 0) (i32.const 0))
    (if (i32.load8_u (i32.const 0)) (then unreachable)))

  ;; Answer `status` with the body at `ptr`/`len` and no headers.
  (func $respond (param $out i32) (param $status i32) (param $ptr i32) (param $len i32)
    (local $s i32)
    (local.set $s (call $start (local.get $out) (local.get $status) (call $fields_new)))
    (call $write_all (local.get $s) (local.get $ptr) (local.get $len))
    (call $finish (local.get $s)))
