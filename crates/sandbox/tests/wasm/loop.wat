;; Spins forever.
;; ---- body ----
  (func (export "wasi:http/incoming-handler@0.2.12#handle") (param $req i32) (param $out i32)
    (loop $l (br $l)))
