//! EIP-712 typed-data hashing for `signTypedData`.
//!
//! Input is the JSON shape ethers/viem/`eth_signTypedData_v4` use:
//! `{types, primaryType, domain, message}`. `types.EIP712Domain` may be omitted; it is
//! then inferred from the domain's fields (name, version, chainId, verifyingContract, salt).

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::keccak256;

/// Why typed data could not be hashed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TypedDataError(String);

fn err<T>(m: impl Into<String>) -> Result<T, TypedDataError> {
    Err(TypedDataError(m.into()))
}

type Types = Map<String, Value>;

/// `keccak256(0x19 0x01 ‖ domainSeparator ‖ hashStruct(message))`.
pub fn typed_data_hash(td: &Value) -> Result<[u8; 32], TypedDataError> {
    let mut types = td
        .get("types")
        .and_then(Value::as_object)
        .cloned()
        .ok_or_else(|| TypedDataError("missing types".into()))?;
    let primary = td
        .get("primaryType")
        .and_then(Value::as_str)
        .ok_or_else(|| TypedDataError("missing primaryType".into()))?;
    let domain = td
        .get("domain")
        .cloned()
        .unwrap_or(Value::Object(Map::new()));
    let message = td
        .get("message")
        .ok_or_else(|| TypedDataError("missing message".into()))?;
    if !types.contains_key("EIP712Domain") {
        let d = domain.as_object().cloned().unwrap_or_default();
        let mut fields = Vec::new();
        for (n, t) in [
            ("name", "string"),
            ("version", "string"),
            ("chainId", "uint256"),
            ("verifyingContract", "address"),
            ("salt", "bytes32"),
        ] {
            if d.contains_key(n) {
                fields.push(serde_json::json!({"name": n, "type": t}));
            }
        }
        types.insert("EIP712Domain".into(), Value::Array(fields));
    }
    let ds = hash_struct(&types, "EIP712Domain", &domain, 0)?;
    let mut buf = vec![0x19, 0x01];
    buf.extend_from_slice(&ds);
    if primary != "EIP712Domain" {
        buf.extend_from_slice(&hash_struct(&types, primary, message, 0)?);
    }
    Ok(keccak256(&buf))
}

fn fields<'a>(types: &'a Types, name: &str) -> Result<Vec<(&'a str, &'a str)>, TypedDataError> {
    let arr = types
        .get(name)
        .and_then(Value::as_array)
        .ok_or_else(|| TypedDataError(format!("unknown type {name}")))?;
    arr.iter()
        .map(|f| {
            let n = f.get("name").and_then(Value::as_str);
            let t = f.get("type").and_then(Value::as_str);
            n.zip(t)
                .ok_or_else(|| TypedDataError(format!("bad field in {name}")))
        })
        .collect()
}

fn base_type(t: &str) -> &str {
    t.split('[').next().unwrap_or(t)
}

fn collect_deps(
    types: &Types,
    name: &str,
    out: &mut BTreeSet<String>,
) -> Result<(), TypedDataError> {
    if out.contains(name) || !types.contains_key(name) {
        return Ok(());
    }
    out.insert(name.to_owned());
    for (_, t) in fields(types, name)? {
        collect_deps(types, base_type(t), out)?;
    }
    Ok(())
}

fn encode_type(types: &Types, name: &str) -> Result<String, TypedDataError> {
    let mut deps = BTreeSet::new();
    collect_deps(types, name, &mut deps)?;
    deps.remove(name);
    let mut s = String::new();
    for t in std::iter::once(name.to_owned()).chain(deps) {
        let fs = fields(types, &t)?;
        s.push_str(&t);
        s.push('(');
        s.push_str(
            &fs.iter()
                .map(|(n, ty)| format!("{ty} {n}"))
                .collect::<Vec<_>>()
                .join(","),
        );
        s.push(')');
    }
    Ok(s)
}

fn hash_struct(
    types: &Types,
    name: &str,
    value: &Value,
    depth: usize,
) -> Result<[u8; 32], TypedDataError> {
    if depth > 32 {
        return err("typed data nested too deeply");
    }
    let obj = value
        .as_object()
        .ok_or_else(|| TypedDataError(format!("{name}: expected an object")))?;
    let mut buf = keccak256(encode_type(types, name)?.as_bytes()).to_vec();
    for (n, t) in fields(types, name)? {
        let v = obj.get(n).unwrap_or(&Value::Null);
        buf.extend_from_slice(&encode_value(types, t, v, depth + 1)?);
    }
    Ok(keccak256(&buf))
}

fn encode_value(
    types: &Types,
    t: &str,
    v: &Value,
    depth: usize,
) -> Result<[u8; 32], TypedDataError> {
    if depth > 64 {
        return err("typed data nested too deeply");
    }
    if let Some(inner) = t.strip_suffix(']') {
        let open = inner
            .rfind('[')
            .ok_or_else(|| TypedDataError(format!("bad type {t}")))?;
        let elem = &inner[..open];
        let arr = v
            .as_array()
            .ok_or_else(|| TypedDataError(format!("{t}: expected an array")))?;
        let n = &inner[open + 1..];
        if !n.is_empty() && n.parse::<usize>().ok() != Some(arr.len()) {
            return err(format!("{t}: wrong length"));
        }
        let mut buf = Vec::with_capacity(arr.len() * 32);
        for e in arr {
            buf.extend_from_slice(&encode_value(types, elem, e, depth + 1)?);
        }
        return Ok(keccak256(&buf));
    }
    if types.contains_key(t) {
        return hash_struct(types, t, v, depth);
    }
    match t {
        "string" => Ok(keccak256(
            v.as_str()
                .ok_or_else(|| TypedDataError("string expected".into()))?
                .as_bytes(),
        )),
        "bytes" => Ok(keccak256(&hex_bytes(v)?)),
        "bool" => {
            let b = v
                .as_bool()
                .ok_or_else(|| TypedDataError("bool expected".into()))?;
            let mut w = [0u8; 32];
            w[31] = u8::from(b);
            Ok(w)
        }
        "address" => {
            let b = hex_bytes(v)?;
            if b.len() != 20 {
                return err("address must be 20 bytes");
            }
            let mut w = [0u8; 32];
            w[12..].copy_from_slice(&b);
            Ok(w)
        }
        _ if t.starts_with("bytes") => {
            let n: usize = t[5..]
                .parse()
                .map_err(|_| TypedDataError(format!("bad type {t}")))?;
            let b = hex_bytes(v)?;
            if n == 0 || n > 32 || b.len() != n {
                return err(format!("{t}: wrong length"));
            }
            let mut w = [0u8; 32];
            w[..n].copy_from_slice(&b);
            Ok(w)
        }
        _ if t.starts_with("uint") || t.starts_with("int") => {
            let signed = t.starts_with("int");
            let bits: u32 = t
                .trim_start_matches('u')
                .trim_start_matches("int")
                .parse()
                .unwrap_or(256);
            if bits == 0 || bits > 256 || bits % 8 != 0 {
                return err(format!("bad type {t}"));
            }
            let (neg, mag) = parse_int(v)?;
            if neg && !signed {
                return err(format!("{t}: negative value"));
            }
            Ok(if neg { twos_complement(mag) } else { mag })
        }
        _ => err(format!("unknown type {t}")),
    }
}

fn hex_bytes(v: &Value) -> Result<Vec<u8>, TypedDataError> {
    let s = v
        .as_str()
        .ok_or_else(|| TypedDataError("hex string expected".into()))?;
    let s = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    hex::decode(s).map_err(|e| TypedDataError(format!("bad hex: {e}")))
}

fn parse_int(v: &Value) -> Result<(bool, [u8; 32]), TypedDataError> {
    let s = match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_owned(),
        _ => return err("integer expected"),
    };
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r.to_owned()),
        None => (false, s),
    };
    let mut w = [0u8; 32];
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        let h = if h.len() % 2 == 1 {
            format!("0{h}")
        } else {
            h.to_owned()
        };
        let b = hex::decode(&h).map_err(|e| TypedDataError(format!("bad hex integer: {e}")))?;
        let b: Vec<u8> = b.into_iter().skip_while(|x| *x == 0).collect();
        if b.len() > 32 {
            return err("integer too large");
        }
        w[32 - b.len()..].copy_from_slice(&b);
    } else {
        if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
            return err(format!("bad integer `{s}`"));
        }
        for d in s.bytes() {
            let mut carry = u32::from(d - b'0');
            for byte in w.iter_mut().rev() {
                let x = u32::from(*byte) * 10 + carry;
                *byte = (x & 0xff) as u8;
                carry = x >> 8;
            }
            if carry != 0 {
                return err("integer too large");
            }
        }
    }
    Ok((neg, w))
}

fn twos_complement(mut w: [u8; 32]) -> [u8; 32] {
    for b in &mut w {
        *b = !*b;
    }
    for b in w.iter_mut().rev() {
        let (r, o) = b.overflowing_add(1);
        *b = r;
        if !o {
            break;
        }
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The "Mail" example from the EIP-712 specification.
    #[test]
    fn eip712_mail_vector() {
        let td = serde_json::json!({
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}],
                "Person": [{"name": "name", "type": "string"}, {"name": "wallet", "type": "address"}],
                "Mail": [{"name": "from", "type": "Person"}, {"name": "to", "type": "Person"}, {"name": "contents", "type": "string"}]
            },
            "primaryType": "Mail",
            "domain": {"name": "Ether Mail", "version": "1", "chainId": 1,
                "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"},
            "message": {
                "from": {"name": "Cow", "wallet": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},
                "to": {"name": "Bob", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},
                "contents": "Hello, Bob!"
            }
        });
        assert_eq!(
            hex::encode(typed_data_hash(&td).unwrap()),
            "be609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2"
        );
        let mut no_domain_type = td.clone();
        no_domain_type["types"]
            .as_object_mut()
            .unwrap()
            .remove("EIP712Domain");
        assert_eq!(
            typed_data_hash(&no_domain_type).unwrap(),
            typed_data_hash(&td).unwrap()
        );
        let mut bad = td;
        bad["message"]["from"]["wallet"] = serde_json::json!("0x12");
        assert!(typed_data_hash(&bad).is_err());
    }

    #[test]
    fn ints() {
        assert_eq!(parse_int(&serde_json::json!("0x10")).unwrap().1[31], 16);
        assert_eq!(parse_int(&serde_json::json!("256")).unwrap().1[30], 1);
        assert_eq!(
            twos_complement(parse_int(&serde_json::json!(1)).unwrap().1),
            [0xff; 32]
        );
    }
}
