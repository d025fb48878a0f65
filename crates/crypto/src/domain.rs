//! Domain-separation tags. Every derivation and signed preimage uses exactly one of these;
//! they are listed with their use in `docs/protocol.md`.

/// HKDF salt of the key tree.
pub const KEYTREE_SALT: &[u8] = b"pith/keytree/v1";
/// HKDF label: a program's X25519 OHTTP key (input keying material for DeriveKeyPair).
pub const PROGRAM_ENCRYPTION: &str = "pith/v1/program/encryption";
/// HKDF label: a program's secp256k1 signing key.
pub const PROGRAM_SIGNING: &str = "pith/v1/program/signing";
/// HKDF label: a program's storage (sealing) key.
pub const PROGRAM_STORAGE: &str = "pith/v1/program/storage";
/// HKDF label: a key derived by a program at a path (`env.keys.derive(path)`), expanded from
/// the program's user-key root.
pub const PROGRAM_USER: &str = "pith/v1/program/user";
/// HKDF label: a program's user-key root (released to workers with the program keys).
pub const PROGRAM_USER_ROOT: &str = "pith/v1/program/user-root";
/// HPKE `info` prefix of key transport (KMS → worker, KMS → KMS), see [`crate::transport`].
pub const TRANSPORT_INFO: &[u8] = b"pith/v1/key-transport";
/// Key-transport purpose: a program key bundle for a worker.
pub const TRANSPORT_PROGRAM_KEYS: &str = "program-keys";
/// Key-transport purpose: master keys for a KMS peer.
pub const TRANSPORT_MASTER_KEYS: &str = "master-keys";
/// Magic of a program key bundle ([`crate::bundle`]).
pub const PROGRAM_BUNDLE_MAGIC: &[u8; 8] = b"PITHPKB\x00";
/// Magic of a master key bundle ([`crate::bundle`]).
pub const MASTER_BUNDLE_MAGIC: &[u8; 8] = b"PITHMKB\x00";
/// AEAD associated-data prefix of a sealed storage value.
pub const SEAL_AD: &[u8] = b"pith/v1/kv-seal";
/// EIP-712 domain name of receipts.
pub const RECEIPT_DOMAIN_NAME: &str = "Pith Receipt";
/// EIP-712 domain name of program key certificates.
pub const CERTIFY_DOMAIN_NAME: &str = "Pith KMS";
/// EIP-712 domain version used by every Pith domain.
pub const EIP712_VERSION: &str = "1";
/// Binary HTTP header carrying the request nonce (hex, 16..=32 bytes).
pub const NONCE_HEADER: &str = "pith-nonce";
/// Binary HTTP header carrying the request expiry (unix seconds, decimal).
pub const EXPIRY_HEADER: &str = "pith-expiry";
