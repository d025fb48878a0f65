//! pith-crypto's key bundles and key transport (`pith_crypto::bundle`, `transport`): strict
//! parsing never panics, and whatever parses re-encodes to exactly the input (one encoding
//! per bundle); a transport message never opens under a key, purpose or context it was not
//! sealed for, and tampered input is refused without a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pith_crypto::bundle::{MasterKeyBundle, ProgramKeyBundle};
use pith_crypto::keytree::{MasterKey, ProgramId};
use pith_crypto::transport::{self, Purpose};

const SECRET: [u8; 32] = [0x5a; 32];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    match selector % 4 {
        0 => {
            if let Ok(b) = ProgramKeyBundle::decode(rest) {
                assert_eq!(b.encode().as_slice(), rest, "program bundle is not canonical");
            }
        }
        1 => {
            if let Ok(b) = MasterKeyBundle::decode(rest) {
                assert_eq!(b.encode().as_slice(), rest, "master bundle is not canonical");
            }
        }
        2 => {
            // Arbitrary bytes as a sealed message: refused (a forgery would need the AEAD key).
            for purpose in [Purpose::ProgramKeys, Purpose::MasterKeys] {
                assert!(transport::open(&SECRET, purpose, b"context", rest).is_err());
            }
        }
        _ => {
            // Build a real bundle from the input, seal it, flip one input-chosen bit: the
            // original opens and round-trips, the tampered one is refused.
            let Some((&n, rest)) = rest.split_first() else { return };
            let n = usize::from(n % 4) + 1;
            let mut masters = Vec::new();
            for i in 0..n {
                let mut secret = [0u8; 32];
                for (j, b) in secret.iter_mut().enumerate() {
                    *b = rest.get(i * 32 + j).copied().unwrap_or(i as u8);
                }
                masters.push(MasterKey::from_bytes(secret, (i as u32) * 3));
            }
            let program = ProgramId([rest.first().copied().unwrap_or(0); 32]);
            let Ok(bundle) = ProgramKeyBundle::derive(program, &masters) else { return };
            let public = transport::public_key(&SECRET).expect("public key");
            let context = transport::program_context(&program.0, &pith_crypto::Address::repeat_byte(7));
            let sealed = transport::seal(&public, Purpose::ProgramKeys, &context, &bundle.encode()).expect("seal");
            let opened = transport::open(&SECRET, Purpose::ProgramKeys, &context, &sealed).expect("open");
            let back = ProgramKeyBundle::decode(&opened).expect("decode");
            assert_eq!(back.encode().as_slice(), bundle.encode().as_slice());
            let at = rest.len() % sealed.len();
            let mut t = sealed.clone();
            t[at] ^= 1 << (rest.len() % 8);
            assert!(transport::open(&SECRET, Purpose::ProgramKeys, &context, &t).is_err());
            assert!(MasterKeyBundle::new(masters).and_then(|m| MasterKeyBundle::decode(&m.encode())).is_ok());
        }
    }
});
