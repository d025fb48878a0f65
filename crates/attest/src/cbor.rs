//! A small CBOR (RFC 8949) reader for untrusted input: every read is bounds-checked and
//! returns a `Result`, nesting depth is limited, definite and indefinite lengths are both
//! accepted, and byte strings keep their position in the input (for signed-region checks).

use std::borrow::Cow;
use std::ops::Range;

use crate::error::{Error, Result};

/// Maximum nesting depth of arrays, maps and tags.
const MAX_DEPTH: usize = 16;

/// A decoded CBOR data item.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cbor<'a> {
    /// Major type 0.
    Uint(u64),
    /// Major type 1: the value is `-1 - n`.
    Nint(u64),
    /// Major type 2.
    Bytes(Bstr<'a>),
    /// Major type 3.
    Text(Cow<'a, str>),
    /// Major type 4.
    Array(Vec<Cbor<'a>>),
    /// Major type 5, entries in encoded order.
    Map(Vec<(Cbor<'a>, Cbor<'a>)>),
    /// Major type 6.
    Tag(u64, Box<Cbor<'a>>),
    /// Simple values `false`, `true`.
    Bool(bool),
    /// Simple value `null`.
    Null,
    /// Simple value `undefined` and other simple values.
    Simple(u8),
    /// Floats (kept as raw bits; never interpreted here).
    Float(u64),
}

/// A byte string and, when it was encoded with a definite length, the range of its content
/// inside the input.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Bstr<'a> {
    pub(crate) bytes: Cow<'a, [u8]>,
    pub(crate) range: Option<Range<usize>>,
}

impl<'a> Cbor<'a> {
    /// Decode exactly one data item from `input`; trailing bytes are an error.
    pub(crate) fn decode_one(input: &'a [u8]) -> Result<Self> {
        let mut r = CborReader { input, pos: 0 };
        let item = r.item(0)?;
        if r.pos != input.len() {
            return Err(Error::malformed(format!(
                "{} trailing bytes after the CBOR item",
                input.len().saturating_sub(r.pos)
            )));
        }
        Ok(item)
    }

    pub(crate) fn as_bytes(&self) -> Option<&Bstr<'a>> {
        match self {
            Self::Bytes(b) => Some(b),
            _ => None,
        }
    }
    pub(crate) fn as_text(&self) -> Option<&str> {
        match self {
            Self::Text(t) => Some(t),
            _ => None,
        }
    }
    pub(crate) fn as_array(&self) -> Option<&[Cbor<'a>]> {
        match self {
            Self::Array(a) => Some(a),
            _ => None,
        }
    }
    pub(crate) fn as_map(&self) -> Option<&[(Cbor<'a>, Cbor<'a>)]> {
        match self {
            Self::Map(m) => Some(m),
            _ => None,
        }
    }
    pub(crate) fn as_uint(&self) -> Option<u64> {
        match self {
            Self::Uint(n) => Some(*n),
            _ => None,
        }
    }
    /// Integer value as i128 (major types 0 and 1).
    pub(crate) fn as_int(&self) -> Option<i128> {
        match self {
            Self::Uint(n) => Some(i128::from(*n)),
            Self::Nint(n) => (-1i128).checked_sub(i128::from(*n)),
            _ => None,
        }
    }
}

/// Look up a text key in a map; a key that occurs twice is an error.
pub(crate) fn map_get<'m, 'a>(
    map: &'m [(Cbor<'a>, Cbor<'a>)],
    key: &str,
) -> Result<Option<&'m Cbor<'a>>> {
    let mut found = None;
    for (k, v) in map {
        if k.as_text() == Some(key) {
            if found.is_some() {
                return Err(Error::malformed(format!("duplicate map key {key:?}")));
            }
            found = Some(v);
        }
    }
    Ok(found)
}

struct CborReader<'a> {
    input: &'a [u8],
    pos: usize,
}

/// Additional-information value 31: indefinite length / break.
const INDEFINITE: u8 = 31;

impl<'a> CborReader<'a> {
    fn byte(&mut self) -> Result<u8> {
        let b = *self
            .input
            .get(self.pos)
            .ok_or_else(|| Error::malformed("CBOR truncated"))?;
        self.pos = self.pos.saturating_add(1);
        Ok(b)
    }

    fn peek(&self) -> Result<u8> {
        self.input
            .get(self.pos)
            .copied()
            .ok_or_else(|| Error::malformed("CBOR truncated"))
    }

    fn take(&mut self, n: u64) -> Result<(&'a [u8], Range<usize>)> {
        let n = usize::try_from(n).map_err(|_| Error::malformed("CBOR length too large"))?;
        let end = self
            .pos
            .checked_add(n)
            .ok_or_else(|| Error::malformed("CBOR length overflow"))?;
        let bytes = self
            .input
            .get(self.pos..end)
            .ok_or_else(|| Error::malformed("CBOR truncated"))?;
        let range = self.pos..end;
        self.pos = end;
        Ok((bytes, range))
    }

    /// The argument for additional information `ai` (0..=27).
    fn argument(&mut self, ai: u8) -> Result<u64> {
        let width = match ai {
            0..=23 => return Ok(u64::from(ai)),
            24 => 1,
            25 => 2,
            26 => 4,
            27 => 8,
            _ => {
                return Err(Error::malformed(format!(
                    "CBOR reserved additional information {ai}"
                )));
            }
        };
        let (bytes, _) = self.take(width)?;
        Ok(bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    /// Remaining input length: an upper bound for any element count.
    fn remaining(&self) -> usize {
        self.input.len().saturating_sub(self.pos)
    }

    fn item(&mut self, depth: usize) -> Result<Cbor<'a>> {
        if depth > MAX_DEPTH {
            return Err(Error::malformed("CBOR nested too deeply"));
        }
        let initial = self.byte()?;
        let major = initial >> 5;
        let ai = initial & 0x1f;
        match major {
            0 => Ok(Cbor::Uint(self.argument(ai)?)),
            1 => Ok(Cbor::Nint(self.argument(ai)?)),
            2 => {
                if ai == INDEFINITE {
                    let mut out = Vec::new();
                    while !self.at_break()? {
                        match self.item(depth.saturating_add(1))? {
                            Cbor::Bytes(chunk) if chunk.range.is_some() => {
                                out.extend_from_slice(&chunk.bytes)
                            }
                            _ => {
                                return Err(Error::malformed(
                                    "CBOR indefinite byte string with a bad chunk",
                                ));
                            }
                        }
                    }
                    Ok(Cbor::Bytes(Bstr {
                        bytes: Cow::Owned(out),
                        range: None,
                    }))
                } else {
                    let n = self.argument(ai)?;
                    let (bytes, range) = self.take(n)?;
                    Ok(Cbor::Bytes(Bstr {
                        bytes: Cow::Borrowed(bytes),
                        range: Some(range),
                    }))
                }
            }
            3 => {
                if ai == INDEFINITE {
                    let mut out = String::new();
                    while !self.at_break()? {
                        match self.item(depth.saturating_add(1))? {
                            Cbor::Text(Cow::Borrowed(chunk)) => out.push_str(chunk),
                            _ => {
                                return Err(Error::malformed(
                                    "CBOR indefinite text string with a bad chunk",
                                ));
                            }
                        }
                    }
                    Ok(Cbor::Text(Cow::Owned(out)))
                } else {
                    let n = self.argument(ai)?;
                    let (bytes, _) = self.take(n)?;
                    let text = std::str::from_utf8(bytes)
                        .map_err(|_| Error::malformed("CBOR text is not UTF-8"))?;
                    Ok(Cbor::Text(Cow::Borrowed(text)))
                }
            }
            4 => {
                let mut items = Vec::new();
                if ai == INDEFINITE {
                    while !self.at_break()? {
                        items.push(self.item(depth.saturating_add(1))?);
                    }
                } else {
                    let n = self.argument(ai)?;
                    if n > u64::try_from(self.remaining()).unwrap_or(u64::MAX) {
                        return Err(Error::malformed("CBOR array longer than the input"));
                    }
                    for _ in 0..n {
                        items.push(self.item(depth.saturating_add(1))?);
                    }
                }
                Ok(Cbor::Array(items))
            }
            5 => {
                let mut entries = Vec::new();
                if ai == INDEFINITE {
                    while !self.at_break()? {
                        let k = self.item(depth.saturating_add(1))?;
                        let v = self.item(depth.saturating_add(1))?;
                        entries.push((k, v));
                    }
                } else {
                    let n = self.argument(ai)?;
                    if n > u64::try_from(self.remaining()).unwrap_or(u64::MAX) {
                        return Err(Error::malformed("CBOR map longer than the input"));
                    }
                    for _ in 0..n {
                        let k = self.item(depth.saturating_add(1))?;
                        let v = self.item(depth.saturating_add(1))?;
                        entries.push((k, v));
                    }
                }
                Ok(Cbor::Map(entries))
            }
            6 => {
                let tag = self.argument(ai)?;
                Ok(Cbor::Tag(
                    tag,
                    Box::new(self.item(depth.saturating_add(1))?),
                ))
            }
            _ => match ai {
                20 => Ok(Cbor::Bool(false)),
                21 => Ok(Cbor::Bool(true)),
                22 => Ok(Cbor::Null),
                0..=19 | 23 => Ok(Cbor::Simple(ai)),
                24 => {
                    let v = self.byte()?;
                    if v < 32 {
                        return Err(Error::malformed("CBOR non-canonical simple value"));
                    }
                    Ok(Cbor::Simple(v))
                }
                25..=27 => Ok(Cbor::Float(self.argument(ai)?)),
                _ => Err(Error::malformed(
                    "CBOR unexpected break or reserved simple value",
                )),
            },
        }
    }

    /// Consume a break (0xff) if it is next.
    fn at_break(&mut self) -> Result<bool> {
        if self.peek()? == 0xff {
            self.pos = self.pos.saturating_add(1);
            Ok(true)
        } else {
            Ok(false)
        }
    }
}

/// Encode a byte string header (definite length) followed by `bytes`.
pub(crate) fn encode_bstr(out: &mut Vec<u8>, bytes: &[u8]) {
    encode_head(out, 2, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Encode a text string header followed by `text`.
pub(crate) fn encode_text(out: &mut Vec<u8>, text: &str) {
    encode_head(out, 3, text.len() as u64);
    out.extend_from_slice(text.as_bytes());
}

/// Encode the shortest head for `major` with argument `n`.
pub(crate) fn encode_head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    if n < 24 {
        out.push(m | n as u8);
    } else if n <= 0xff {
        out.push(m | 24);
        out.push(n as u8);
    } else if n <= 0xffff {
        out.push(m | 25);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else if n <= 0xffff_ffff {
        out.push(m | 26);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    #[test]
    fn definite_and_indefinite() {
        // {"a": 1, "b": [h'0102', -2]} definite.
        let def = [0xa2, 0x61, b'a', 0x01, 0x61, b'b', 0x82, 0x42, 1, 2, 0x21];
        // Same with an indefinite map, indefinite array and chunked byte string.
        let indef = [
            0xbf, 0x61, b'a', 0x01, 0x61, b'b', 0x9f, 0x5f, 0x41, 1, 0x41, 2, 0xff, 0x21, 0xff,
            0xff,
        ];
        let a = Cbor::decode_one(&def).unwrap();
        let b = Cbor::decode_one(&indef).unwrap();
        let m = a.as_map().unwrap();
        assert_eq!(map_get(m, "a").unwrap().unwrap().as_uint(), Some(1));
        let arr = map_get(b.as_map().unwrap(), "b")
            .unwrap()
            .unwrap()
            .as_array()
            .unwrap();
        assert_eq!(&*arr[0].as_bytes().unwrap().bytes, &[1, 2]);
        assert_eq!(arr[1].as_int(), Some(-2));
        let arr = map_get(m, "b").unwrap().unwrap().as_array().unwrap();
        assert_eq!(arr[0].as_bytes().unwrap().range, Some(8..10));
    }

    #[test]
    fn rejects_bad_input() {
        for bad in [
            &[][..],
            &[0x82, 0x01],                                           // truncated array
            &[0x01, 0x00],                                           // trailing byte
            &[0x5a, 0xff, 0xff, 0xff],                               // truncated length
            &[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], // absurd count
            &[0xff],                                                 // lone break
            &[0x1c],                                                 // reserved ai
            &[0x62, 0xff, 0xfe],                                     // invalid UTF-8
            &[0xbf, 0x01],                                           // unterminated indefinite map
            &[0xa2, 0x61, b'a', 0x01, 0x61, b'a', 0x02][..], // fine to decode, duplicate checked by map_get
        ] {
            let r = Cbor::decode_one(bad);
            if let Ok(v) = r {
                assert!(map_get(v.as_map().unwrap(), "a").is_err());
            }
        }
        let deep = vec![0x81u8; 100];
        assert!(Cbor::decode_one(&deep).is_err());
    }

    #[test]
    fn encodes_heads() {
        let mut out = Vec::new();
        encode_bstr(&mut out, &[0u8; 300]);
        assert_eq!(&out[..3], &[0x59, 0x01, 0x2c]);
        let mut out = Vec::new();
        encode_text(&mut out, "Signature1");
        assert_eq!(out[0], 0x6a);
    }
}
