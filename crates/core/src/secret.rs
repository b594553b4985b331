//! Secret tokens: generated with 256 random bits, stored only as a SHA-256 hash, and
//! compared in constant time.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Prefix of API tokens, so a leaked one is recognisable in a scanner.
pub const API_TOKEN_PREFIX: &str = "lsk_";
/// Prefix of lock tokens.
pub const LOCK_TOKEN_PREFIX: &str = "lsl_";

/// A new token: `prefix` followed by 32 random bytes in URL-safe base64.
pub fn generate_token(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// The form a token is stored and looked up in. A fast hash is enough: the tokens carry
/// 256 random bits, so there is nothing to brute-force.
pub fn hash_token(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares two secrets without leaking, through timing, where they first differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_distinct_and_hash_stably() {
        let a = generate_token(LOCK_TOKEN_PREFIX);
        let b = generate_token(LOCK_TOKEN_PREFIX);
        assert_ne!(a, b);
        assert!(a.starts_with(LOCK_TOKEN_PREFIX));
        assert!(a.len() >= LOCK_TOKEN_PREFIX.len() + 43);
        assert_eq!(hash_token(&a), hash_token(&a));
        assert_ne!(hash_token(&a), hash_token(&b));
        assert_eq!(hash_token("abc").len(), 64);
    }

    #[test]
    fn constant_time_eq_compares_whole_values() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
    }
}
