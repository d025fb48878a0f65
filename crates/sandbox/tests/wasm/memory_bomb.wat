;; Grows its memory one page (64 KiB) at a time until growth fails, then answers.
;; ---- body ----
  (data (i32.const 1024) "grew until refused")
  (func (export "wasi:http/incoming-handler@0.2.12#handle") (param $req i32) (param $out i32)
    (loop $l (br_if $l (i32.ge_s (memory.grow (i32.const 1)) (i32.const 0))))
    (call $respond (local.get $out) (i32.const 200) (i32.const 1024) (i32.const 18)))
