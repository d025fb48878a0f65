//! A small DER reader and the part of X.509 the AMD chain needs.
//!
//! Written for AMD certificates: it accepts any INTEGER as serial number (some VCEKs carry
//! a zero or negative serial, which RFC 5280 forbids and strict parsers reject), reads
//! extensions as raw (OID, value) pairs and keeps the exact `tbsCertificate` bytes for
//! signature checks. Every read goes through [`Der`], whose reads return `Result`; trailing
//! bytes after a certificate are rejected.

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

use crate::error::Error;

pub(crate) const TAG_BOOLEAN: u8 = 0x01;
pub(crate) const TAG_INTEGER: u8 = 0x02;
pub(crate) const TAG_BIT_STRING: u8 = 0x03;
pub(crate) const TAG_OCTET_STRING: u8 = 0x04;
pub(crate) const TAG_OID: u8 = 0x06;
pub(crate) const TAG_UTC_TIME: u8 = 0x17;
pub(crate) const TAG_GENERALIZED_TIME: u8 = 0x18;
pub(crate) const TAG_SEQUENCE: u8 = 0x30;
pub(crate) const TAG_SET: u8 = 0x31;

/// DER of OID 2.5.4.3 (commonName).
const OID_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];

fn err(msg: &str) -> Error {
    Error::malformed(format!("certificate: {msg}"))
}

/// One TLV: its tag, its content and the whole encoding.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tlv<'a> {
    pub tag: u8,
    pub value: &'a [u8],
    pub raw: &'a [u8],
}

/// A cursor over DER bytes. Only definite lengths; single-byte tags.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Der<'a> {
    rest: &'a [u8],
}

impl<'a> Der<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    pub fn peek_tag(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    fn byte(&mut self) -> Result<u8, Error> {
        let (&b, rest) = self.rest.split_first().ok_or_else(|| err("truncated"))?;
        self.rest = rest;
        Ok(b)
    }

    /// Read the next TLV.
    pub fn read(&mut self) -> Result<Tlv<'a>, Error> {
        let start = self.rest;
        let tag = self.byte()?;
        if tag & 0x1f == 0x1f {
            return Err(err("multi-byte tags are not supported"));
        }
        let first = self.byte()?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = first & 0x7f;
            if n == 0 || n > 4 {
                return Err(err("unsupported length encoding"));
            }
            let mut len: usize = 0;
            for _ in 0..n {
                let b = self.byte()?;
                len = len
                    .checked_mul(256)
                    .and_then(|l| l.checked_add(usize::from(b)))
                    .ok_or_else(|| err("length overflow"))?;
            }
            len
        };
        let (value, rest) = self
            .rest
            .split_at_checked(len)
            .ok_or_else(|| err("truncated value"))?;
        self.rest = rest;
        let header = start
            .len()
            .checked_sub(rest.len())
            .ok_or_else(|| err("internal length"))?;
        let raw = start.get(..header).ok_or_else(|| err("internal length"))?;
        Ok(Tlv { tag, value, raw })
    }

    /// Read the next TLV and require `tag`.
    pub fn expect(&mut self, tag: u8) -> Result<Tlv<'a>, Error> {
        let tlv = self.read()?;
        if tlv.tag != tag {
            return Err(err(&format!(
                "expected tag {tag:#04x}, found {:#04x}",
                tlv.tag
            )));
        }
        Ok(tlv)
    }

    /// Read the next TLV if its tag is `tag`.
    pub fn optional(&mut self, tag: u8) -> Result<Option<Tlv<'a>>, Error> {
        if self.peek_tag() == Some(tag) {
            self.read().map(Some)
        } else {
            Ok(None)
        }
    }

    /// Require that nothing is left.
    pub fn finish(&self) -> Result<(), Error> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(err("trailing data"))
        }
    }
}

/// Content of a DER INTEGER as a small unsigned number (leading zero octets allowed).
pub(crate) fn small_uint(value: &[u8]) -> Result<u64, Error> {
    if value.first().is_some_and(|&b| b & 0x80 != 0) {
        return Err(err("negative integer"));
    }
    let mut n: u64 = 0;
    for &b in value {
        n = n
            .checked_mul(256)
            .and_then(|n| n.checked_add(u64::from(b)))
            .ok_or_else(|| err("integer too large"))?;
    }
    Ok(n)
}

/// Strip the leading zero octets of a positive DER INTEGER content.
pub(crate) fn uint_bytes(value: &[u8]) -> Result<&[u8], Error> {
    if value.first().is_some_and(|&b| b & 0x80 != 0) {
        return Err(err("negative integer"));
    }
    let zeros = value.iter().take_while(|&&b| b == 0).count();
    value.get(zeros..).ok_or_else(|| err("integer"))
}

/// An AlgorithmIdentifier: OID content and the raw parameters (if any).
#[derive(Debug, Clone, Copy)]
pub(crate) struct AlgId<'a> {
    pub oid: &'a [u8],
    pub params: Option<Tlv<'a>>,
    pub raw: &'a [u8],
}

fn alg_id<'a>(tlv: Tlv<'a>) -> Result<AlgId<'a>, Error> {
    if tlv.tag != TAG_SEQUENCE {
        return Err(err("algorithm identifier is not a sequence"));
    }
    let mut d = Der::new(tlv.value);
    let oid = d.expect(TAG_OID)?.value;
    let params = if d.is_empty() { None } else { Some(d.read()?) };
    d.finish()?;
    Ok(AlgId {
        oid,
        params,
        raw: tlv.raw,
    })
}

/// A parsed certificate, borrowing from its DER.
#[derive(Debug, Clone)]
pub(crate) struct Certificate<'a> {
    /// The exact `tbsCertificate` encoding (what the issuer signed).
    pub tbs: &'a [u8],
    /// Outer signature algorithm.
    pub signature_algorithm: AlgId<'a>,
    /// Signature bits.
    pub signature: &'a [u8],
    pub issuer_cn: Option<String>,
    pub subject_cn: Option<String>,
    pub issuer_raw: &'a [u8],
    pub subject_raw: &'a [u8],
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// SubjectPublicKeyInfo algorithm.
    pub key_algorithm: AlgId<'a>,
    /// SubjectPublicKeyInfo key bits (BIT STRING content after the unused-bits octet).
    pub key: &'a [u8],
    /// Extensions as (OID content, critical, extnValue content).
    pub extensions: Vec<(&'a [u8], bool, &'a [u8])>,
}

impl<'a> Certificate<'a> {
    /// Parse exactly one DER certificate (no trailing bytes).
    pub fn parse(der: &'a [u8]) -> Result<Self, Error> {
        let mut outer = Der::new(der);
        let cert = outer.expect(TAG_SEQUENCE)?;
        outer.finish()?;
        let mut c = Der::new(cert.value);
        let tbs = c.expect(TAG_SEQUENCE)?;
        let signature_algorithm = alg_id(c.read()?)?;
        let signature = bit_string(c.expect(TAG_BIT_STRING)?.value)?;
        c.finish()?;

        let mut t = Der::new(tbs.value);
        if let Some(v) = t.optional(0xa0)? {
            let mut vd = Der::new(v.value);
            let version = small_uint(vd.expect(TAG_INTEGER)?.value)?;
            vd.finish()?;
            if version != 2 {
                return Err(err("not an X.509 v3 certificate"));
            }
        }
        // Serial number: any INTEGER (AMD VCEKs may carry 0 or a negative value).
        t.expect(TAG_INTEGER)?;
        let inner_alg = alg_id(t.read()?)?;
        if inner_alg.raw != signature_algorithm.raw {
            return Err(err("inner and outer signature algorithms differ"));
        }
        let issuer = t.expect(TAG_SEQUENCE)?;
        let validity = t.expect(TAG_SEQUENCE)?;
        let subject = t.expect(TAG_SEQUENCE)?;
        let spki = t.expect(TAG_SEQUENCE)?;
        let mut extensions = Vec::new();
        while let Some(tag) = t.peek_tag() {
            let field = t.read()?;
            match tag {
                0x81 | 0x82 => {} // issuer/subject unique IDs
                0xa3 => {
                    let mut e = Der::new(field.value);
                    let list = e.expect(TAG_SEQUENCE)?;
                    e.finish()?;
                    let mut l = Der::new(list.value);
                    while !l.is_empty() {
                        let ext = l.expect(TAG_SEQUENCE)?;
                        let mut x = Der::new(ext.value);
                        let oid = x.expect(TAG_OID)?.value;
                        let critical = match x.optional(TAG_BOOLEAN)? {
                            Some(b) => b.value.first().is_some_and(|&v| v != 0),
                            None => false,
                        };
                        let value = x.expect(TAG_OCTET_STRING)?.value;
                        x.finish()?;
                        extensions.push((oid, critical, value));
                    }
                }
                _ => return Err(err("unexpected field in tbsCertificate")),
            }
        }

        let mut v = Der::new(validity.value);
        let not_before = time_value(v.read()?)?;
        let not_after = time_value(v.read()?)?;
        v.finish()?;

        let mut s = Der::new(spki.value);
        let key_algorithm = alg_id(s.read()?)?;
        let key = bit_string(s.expect(TAG_BIT_STRING)?.value)?;
        s.finish()?;

        Ok(Self {
            tbs: tbs.raw,
            signature_algorithm,
            signature,
            issuer_cn: common_name(issuer.value)?,
            subject_cn: common_name(subject.value)?,
            issuer_raw: issuer.raw,
            subject_raw: subject.raw,
            not_before,
            not_after,
            key_algorithm,
            key,
            extensions,
        })
    }

    /// The content of the extension with OID content `oid`, if present.
    pub fn extension(&self, oid: &[u8]) -> Option<&'a [u8]> {
        self.extensions
            .iter()
            .find(|(o, _, _)| *o == oid)
            .map(|&(_, _, v)| v)
    }
}

fn bit_string(value: &[u8]) -> Result<&[u8], Error> {
    match value.split_first() {
        Some((0, bits)) => Ok(bits),
        _ => Err(err("bit string with unused bits")),
    }
}

fn common_name(name: &[u8]) -> Result<Option<String>, Error> {
    let mut rdns = Der::new(name);
    let mut cn = None;
    while !rdns.is_empty() {
        let set = rdns.expect(TAG_SET)?;
        let mut atvs = Der::new(set.value);
        while !atvs.is_empty() {
            let atv = atvs.expect(TAG_SEQUENCE)?;
            let mut a = Der::new(atv.value);
            let oid = a.expect(TAG_OID)?.value;
            let value = a.read()?;
            a.finish()?;
            if oid == OID_COMMON_NAME {
                cn = Some(String::from_utf8_lossy(value.value).into_owned());
            }
        }
    }
    Ok(cn)
}

fn digits(bytes: &[u8]) -> Result<u32, Error> {
    bytes.iter().try_fold(0u32, |acc, &b| {
        if b.is_ascii_digit() {
            acc.checked_mul(10)
                .and_then(|a| a.checked_add(u32::from(b.wrapping_sub(b'0'))))
                .ok_or_else(|| err("time"))
        } else {
            Err(err("time is not numeric"))
        }
    })
}

fn time_value(tlv: Tlv<'_>) -> Result<OffsetDateTime, Error> {
    let (year, rest) = match tlv.tag {
        TAG_UTC_TIME => {
            let (yy, rest) = tlv.value.split_at_checked(2).ok_or_else(|| err("time"))?;
            let yy = digits(yy)?;
            (
                if yy < 50 {
                    2000u32.saturating_add(yy)
                } else {
                    1900u32.saturating_add(yy)
                },
                rest,
            )
        }
        TAG_GENERALIZED_TIME => {
            let (yyyy, rest) = tlv.value.split_at_checked(4).ok_or_else(|| err("time"))?;
            (digits(yyyy)?, rest)
        }
        _ => return Err(err("validity is not a time")),
    };
    // MMDDHHMMSSZ
    if rest.len() != 11 || rest.last() != Some(&b'Z') {
        return Err(err("time must be MMDDHHMMSSZ in UTC"));
    }
    let two = |i: usize| -> Result<u32, Error> {
        digits(
            rest.get(i..i.saturating_add(2))
                .ok_or_else(|| err("time"))?,
        )
    };
    let month = Month::try_from(u8::try_from(two(0)?).map_err(|_| err("month"))?)
        .map_err(|_| err("month"))?;
    let narrow = |v: u32| u8::try_from(v).map_err(|_| err("time field"));
    let date = Date::from_calendar_date(
        i32::try_from(year).map_err(|_| err("year"))?,
        month,
        narrow(two(2)?)?,
    )
    .map_err(|_| err("invalid date"))?;
    let time = Time::from_hms(narrow(two(4)?)?, narrow(two(6)?)?, narrow(two(8)?)?)
        .map_err(|_| err("invalid time"))?;
    Ok(PrimitiveDateTime::new(date, time).assume_utc())
}

/// Decode every `CERTIFICATE` block of a PEM bundle to DER, in order.
pub(crate) fn pem_certificates(text: &[u8]) -> Result<Vec<Vec<u8>>, Error> {
    use base64::Engine as _;
    let text = std::str::from_utf8(text).map_err(|_| Error::malformed("PEM is not UTF-8"))?;
    let mut out = Vec::new();
    let mut body: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line == "-----BEGIN CERTIFICATE-----" {
            if body.is_some() {
                return Err(Error::malformed("PEM: nested BEGIN"));
            }
            body = Some(String::new());
        } else if line == "-----END CERTIFICATE-----" {
            let b = body
                .take()
                .ok_or_else(|| Error::malformed("PEM: END without BEGIN"))?;
            let der = base64::engine::general_purpose::STANDARD
                .decode(b.as_bytes())
                .map_err(|e| Error::malformed(format!("PEM: bad base64: {e}")))?;
            out.push(der);
        } else if let Some(b) = body.as_mut() {
            b.push_str(line);
        }
    }
    if body.is_some() {
        return Err(Error::malformed("PEM: BEGIN without END"));
    }
    Ok(out)
}

/// A certificate file that may be DER or PEM (exactly one certificate).
pub(crate) fn der_or_pem(bytes: &[u8]) -> Result<Vec<u8>, Error> {
    if bytes.first() == Some(&TAG_SEQUENCE) {
        return Ok(bytes.to_vec());
    }
    let mut certs = pem_certificates(bytes)?;
    match (certs.pop(), certs.is_empty()) {
        (Some(der), true) => Ok(der),
        (None, _) => Err(Error::malformed(
            "no certificate found (expected DER or PEM)",
        )),
        (Some(_), false) => Err(Error::malformed("expected one certificate, found several")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn length_forms_and_truncation() {
        let mut d = Der::new(&[0x04, 0x81, 0x01, 0xaa]);
        assert_eq!(d.expect(TAG_OCTET_STRING).unwrap().value, &[0xaa]);
        assert!(Der::new(&[0x04, 0x05, 0x01]).read().is_err());
        assert!(Der::new(&[0x04, 0x80]).read().is_err(), "indefinite length");
        assert!(Der::new(&[0x04, 0x85, 1, 1, 1, 1, 1]).read().is_err());
        assert!(Der::new(&[0x1f, 0x01, 0x00]).read().is_err());
    }

    #[test]
    fn times() {
        let t = time_value(Tlv {
            tag: TAG_UTC_TIME,
            value: b"220924005528Z",
            raw: &[],
        })
        .unwrap();
        assert_eq!(t, time::macros::datetime!(2022-09-24 00:55:28 UTC));
        let t = time_value(Tlv {
            tag: TAG_GENERALIZED_TIME,
            value: b"20491231235959Z",
            raw: &[],
        })
        .unwrap();
        assert_eq!(t, time::macros::datetime!(2049-12-31 23:59:59 UTC));
        assert!(
            time_value(Tlv {
                tag: TAG_UTC_TIME,
                value: b"221324005528Z",
                raw: &[]
            })
            .is_err()
        );
        assert!(
            time_value(Tlv {
                tag: TAG_UTC_TIME,
                value: b"2209240055Z",
                raw: &[]
            })
            .is_err()
        );
    }

    #[test]
    fn integers() {
        assert_eq!(small_uint(&[0x00, 0xdb]).unwrap(), 0xdb);
        assert!(small_uint(&[0x80]).is_err());
        assert_eq!(uint_bytes(&[0, 0, 5]).unwrap(), &[5]);
    }
}
