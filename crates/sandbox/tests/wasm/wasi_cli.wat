;; Imports WASI interfaces beyond the proxy world, as components built with a language's
;; standard library for wasm32-wasip2 do: wasi:cli/environment and
;; wasi:filesystem/preopens. Answers "env=N dirs=M" (both must be 0: no environment, no
;; preopened directory).
(import "wasi:cli/environment@0.2.12" "get-environment" (func $get_env (param i32)))
(import "wasi:filesystem/preopens@0.2.12" "get-directories" (func $get_dirs (param i32)))
;; ---- body ----
  (data (i32.const 1024) "env=? dirs=?")
  (func (export "wasi:http/incoming-handler@0.2.12#handle") (param $req i32) (param $out i32)
    (call $get_env (i32.const 512))
    (i32.store8 (i32.const 1028) (i32.add (i32.const 48) (i32.load (i32.const 516))))
    (call $get_dirs (i32.const 512))
    (i32.store8 (i32.const 1035) (i32.add (i32.const 48) (i32.load (i32.const 516))))
    (call $respond (local.get $out) (i32.const 200) (i32.const 1024) (i32.const 12)))
