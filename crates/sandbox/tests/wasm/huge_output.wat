;; Streams a response body without end (4 KiB writes).
;; ---- body ----
  (func (export "wasi:http/incoming-handler@0.2.12#handle") (param $req i32) (param $out i32)
    (local $s i32)
    (local.set $s (call $start (local.get $out) (i32.const 200) (call $fields_new)))
    (loop $l
      (call $write_all (local.get $s) (i32.const 1024) (i32.const 4096))
      (br $l)))
