;; Writes to stdout without end (4 KiB writes of 63 bytes and a newline).
(import "wasi:cli/stdout@0.2.12" "get-stdout" (func $get_stdout (result i32)))
;; ---- body ----
  (data (i32.const 1024) "log line log line log line log line log line log line log line!\n")
  (func (export "wasi:http/incoming-handler@0.2.12#handle") (param $req i32) (param $out i32)
    (local $s i32) (local $i i32)
    (loop $fill
      (memory.copy (i32.add (i32.const 2048) (i32.mul (local.get $i) (i32.const 64))) (i32.const 1024) (i32.const 64))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $fill (i32.lt_u (local.get $i) (i32.const 64))))
    (local.set $s (call $get_stdout))
    (loop $l
      (call $write (local.get $s) (i32.const 2048) (i32.const 4096) (i32.const 0))
      (br_if $l (i32.eqz (i32.load8_u (i32.const 0))))))
