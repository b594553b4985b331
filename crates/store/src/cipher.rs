//! Secrets at rest: webhook secrets, signing keys and delivery bodies are sealed with
//! XChaCha20-Poly1305 under the operator's key before they are stored.
//!
//! Sealed values carry a prefix, so rows written before a key was configured still read
//! back, and a database that holds sealed values refuses to open without its key. A check
//! value sealed under the key is kept in `settings`, so a wrong key is refused at start
//! instead of failing on the first delivery.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use rand::RngCore;

use crate::{Invalid, StoreError};

/// What every sealed value starts with.
pub const SEALED: &[u8] = b"lse1:";
const NONCE_LEN: usize = 24;

#[derive(Clone)]
pub struct Cipher(XChaCha20Poly1305);

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher(..)")
    }
}

impl Cipher {
    /// A key is 32 random bytes in base64, such as `openssl rand -base64 32` prints.
    pub fn from_base64(text: &str) -> Result<Cipher, Invalid> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| Invalid::new("encryption_key", "must be base64"))?;
        if bytes.len() != 32 {
            return Err(Invalid::new(
                "encryption_key",
                "must decode to exactly 32 bytes",
            ));
        }
        Ok(Cipher(XChaCha20Poly1305::new(Key::from_slice(&bytes))))
    }

    /// `SEALED`, a fresh random nonce, then the ciphertext with its tag.
    pub fn seal(&self, plain: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        // Encryption of an in-memory buffer with a valid key and nonce cannot fail.
        let sealed = self
            .0
            .encrypt(XNonce::from_slice(&nonce), plain)
            .unwrap_or_default();
        [SEALED, &nonce, &sealed].concat()
    }

    pub fn open(&self, stored: &[u8]) -> Result<Vec<u8>, StoreError> {
        let rest = stored
            .strip_prefix(SEALED)
            .ok_or(StoreError::Sealed("not sealed"))?;
        if rest.len() < NONCE_LEN {
            return Err(StoreError::Sealed("a sealed value is cut short"));
        }
        let (nonce, body) = rest.split_at(NONCE_LEN);
        self.0
            .decrypt(XNonce::from_slice(nonce), body)
            .map_err(|_| StoreError::Sealed("a sealed value does not open with this key"))
    }

    /// Seals text into text: the prefix, then base64.
    pub fn seal_text(&self, plain: &str) -> String {
        let sealed = self.seal(plain.as_bytes());
        let prefix = std::str::from_utf8(SEALED).unwrap_or_default();
        format!("{prefix}{}", STANDARD.encode(&sealed[SEALED.len()..]))
    }

    pub fn open_text(&self, stored: &str) -> Result<String, StoreError> {
        let encoded = stored
            .as_bytes()
            .strip_prefix(SEALED)
            .ok_or(StoreError::Sealed("not sealed"))?;
        let raw = STANDARD
            .decode(encoded)
            .map_err(|_| StoreError::Sealed("a sealed value is not base64"))?;
        let plain = self.open(&[SEALED, &raw].concat())?;
        String::from_utf8(plain).map_err(|_| StoreError::Sealed("a sealed text is not UTF-8"))
    }
}

/// Seals with the key if there is one; otherwise stores as given.
pub(crate) fn seal_bytes(cipher: Option<&Cipher>, plain: &[u8]) -> Vec<u8> {
    cipher.map_or_else(|| plain.to_vec(), |c| c.seal(plain))
}

pub(crate) fn seal_text(cipher: Option<&Cipher>, plain: &str) -> String {
    cipher.map_or_else(|| plain.to_owned(), |c| c.seal_text(plain))
}

/// Opens a stored value, sealed or not. A sealed one without a key is an error.
pub(crate) fn open_bytes(cipher: Option<&Cipher>, stored: Vec<u8>) -> Result<Vec<u8>, StoreError> {
    if !stored.starts_with(SEALED) {
        return Ok(stored);
    }
    cipher
        .ok_or(StoreError::Sealed("no encryption key is configured"))?
        .open(&stored)
}

pub(crate) fn open_text(cipher: Option<&Cipher>, stored: String) -> Result<String, StoreError> {
    if !stored.as_bytes().starts_with(SEALED) {
        return Ok(stored);
    }
    cipher
        .ok_or(StoreError::Sealed("no encryption key is configured"))?
        .open_text(&stored)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> String {
        STANDARD.encode([7u8; 32])
    }

    #[test]
    fn sealed_values_open_only_with_their_key() {
        let cipher = Cipher::from_base64(&key()).unwrap();
        let sealed = cipher.seal(b"the secret");
        assert!(sealed.starts_with(SEALED));
        assert!(!sealed.windows(10).any(|w| w == b"the secret"));
        assert_eq!(cipher.open(&sealed).unwrap(), b"the secret");
        let other = Cipher::from_base64(&STANDARD.encode([8u8; 32])).unwrap();
        assert!(other.open(&sealed).is_err());
    }

    #[test]
    fn text_round_trips_and_plain_rows_still_read() {
        let cipher = Cipher::from_base64(&key()).unwrap();
        let sealed = cipher.seal_text("s3cret");
        assert!(sealed.starts_with("lse1:"));
        assert_eq!(open_text(Some(&cipher), sealed.clone()).unwrap(), "s3cret");
        assert_eq!(open_text(Some(&cipher), "plain".into()).unwrap(), "plain");
        assert!(open_text(None, sealed).is_err());
    }

    #[test]
    fn keys_of_the_wrong_form_are_refused() {
        assert!(Cipher::from_base64("not base64!").is_err());
        assert!(Cipher::from_base64(&STANDARD.encode([1u8; 16])).is_err());
    }
}
