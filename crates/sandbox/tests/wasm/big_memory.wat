;; Declares a second memory of 2000 pages (125 MiB) at instantiation.
;; ---- body ----
  (memory $big 2000)
  (func (export "wasi:http/incoming-handler@0.2.12#handle") (param $req i32) (param $out i32)
    (call $respond (local.get $out) (i32.const 200) (i32.const 1024) (i32.const 0)))
