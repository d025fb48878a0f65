;; Calls pith:host/kv.get without end.
(import "pith:host/kv@0.1.0" "get" (func $kv_get (param i32 i32 i32)))
;; ---- body ----
  (data (i32.const 1024) "key")
  (func (export "wasi:http/incoming-handler@0.2.12#handle") (param $req i32) (param $out i32)
    (loop $l
      (call $kv_get (i32.const 1024) (i32.const 3) (i32.const 0))
      (br $l)))
