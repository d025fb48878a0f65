;; Answers 200 "hello from wasm" and counts its invocations in a global (always 1:
;; every invocation gets a fresh instance).
;; ---- body ----
  (global $count (mut i32) (i32.const 0))
  (data (i32.const 1024) "hello from wasm #")
  (func (export "wasi:http/incoming-handler@0.2.12#handle") (param $req i32) (param $out i32)
    (global.set $count (i32.add (global.get $count) (i32.const 1)))
    (i32.store8 (i32.const 1041) (i32.add (i32.const 48) (global.get $count)))
    (call $respond (local.get $out) (i32.const 200) (i32.const 1024) (i32.const 18)))
