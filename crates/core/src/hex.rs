//! Lower-case hex, the form hashes are written in (content hashes, email
//! subjects, a packed ledger hash read back).

/// Appends `bytes` as lower-case hex: a table lookup per nibble, where
/// `write!("{byte:02x}")` went through the formatting machinery per byte.
pub fn push_hex(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for byte in bytes {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
}
