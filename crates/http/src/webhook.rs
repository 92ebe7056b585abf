//! Webhook signature checks. Comparisons are constant-time (the `hmac` crate's
//! `verify_slice`), so timing leaks nothing about the expected signature.

use base64::Engine;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &SecretString, body: &[u8]) -> HmacSha256 {
    let mut mac =
        HmacSha256::new_from_slice(secret.expose_secret().as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(body);
    mac
}

/// `signature` is base64 of HMAC-SHA256(body) (WooCommerce, Shopify style).
pub fn verify_hmac_sha256_base64(secret: &SecretString, body: &[u8], signature: &str) -> bool {
    let Ok(expected) = base64::engine::general_purpose::STANDARD.decode(signature.trim()) else {
        return false;
    };
    mac(secret, body).verify_slice(&expected).is_ok()
}

/// `signature` is lower- or upper-case hex of HMAC-SHA256(body).
pub fn verify_hmac_sha256_hex(secret: &SecretString, body: &[u8], signature: &str) -> bool {
    let signature = signature.trim();
    if !signature.len().is_multiple_of(2) {
        return false;
    }
    let bytes: Option<Vec<u8>> = (0..signature.len())
        .step_by(2)
        .map(|i| signature.get(i..i + 2).and_then(|pair| u8::from_str_radix(pair, 16).ok()))
        .collect();
    match bytes {
        Some(expected) => mac(secret, body).verify_slice(&expected).is_ok(),
        None => false,
    }
}

/// Base64 HMAC-SHA256 of `body`, for senders (sandboxes, tests).
pub fn sign_hmac_sha256_base64(secret: &SecretString, body: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(mac(secret, body).finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_signature_round_trips_and_rejects_tampering() {
        let secret = SecretString::from("s3cret");
        let signature = sign_hmac_sha256_base64(&secret, b"{\"id\":1}");
        assert!(verify_hmac_sha256_base64(&secret, b"{\"id\":1}", &signature));
        assert!(!verify_hmac_sha256_base64(&secret, b"{\"id\":2}", &signature));
        assert!(!verify_hmac_sha256_base64(&SecretString::from("other"), b"{\"id\":1}", &signature));
        assert!(!verify_hmac_sha256_base64(&secret, b"{\"id\":1}", "not base64!"));
        assert!(!verify_hmac_sha256_base64(&secret, b"{\"id\":1}", ""));
    }

    #[test]
    fn hex_signature_is_checked() {
        // RFC 4231 test case 2.
        let secret = SecretString::from("Jefe");
        let expected = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        assert!(verify_hmac_sha256_hex(&secret, b"what do ya want for nothing?", expected));
        assert!(verify_hmac_sha256_hex(&secret, b"what do ya want for nothing?", &expected.to_uppercase()));
        assert!(!verify_hmac_sha256_hex(&secret, b"what do ya want for nothing!", expected));
        assert!(!verify_hmac_sha256_hex(&secret, b"x", "zz"));
    }
}
