;; Waits 60 s on a monotonic-clock pollable (no CPU), then answers.
(import "wasi:clocks/monotonic-clock@0.2.12" "subscribe-duration" (func $sleep (param i64) (result i32)))
(import "wasi:io/poll@0.2.12" "[method]pollable.block" (func $block (param i32)))
;; ---- body ----
  (func (export "wasi:http/incoming-handler@0.2.12#handle") (param $req i32) (param $out i32)
    (call $block (call $sleep (i64.const 60000000000)))
    (call $respond (local.get $out) (i32.const 200) (i32.const 1024) (i32.const 0)))
