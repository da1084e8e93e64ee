//! The Confluent wire format: `0x00`, the schema id (u32, big-endian), the payload.

use super::SerdeError;

/// The first byte of every registry-framed payload.
pub const MAGIC: u8 = 0;

/// Frames `payload` with `schema_id`.
pub fn frame(schema_id: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + payload.len());
    out.push(MAGIC);
    out.extend_from_slice(&schema_id.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Splits a framed message into schema id and payload.
pub fn unframe(bytes: &[u8]) -> Result<(u32, &[u8]), SerdeError> {
    match bytes {
        [MAGIC, a, b, c, d, rest @ ..] => Ok((u32::from_be_bytes([*a, *b, *c, *d]), rest)),
        [] => Err(SerdeError::Wire("empty payload".into())),
        [first, ..] if *first != MAGIC => Err(SerdeError::Wire(format!(
            "magic byte is {first:#04x}, expected 0x00"
        ))),
        _ => Err(SerdeError::Wire(format!(
            "{} bytes is shorter than the 5-byte header",
            bytes.len()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_frame() {
        assert_eq!(frame(0x0102_0304, b"ab"), [0, 1, 2, 3, 4, b'a', b'b']);
        assert_eq!(frame(7, b""), [0, 0, 0, 0, 7]);
        assert_eq!(unframe(&[0, 0, 0, 1, 0, 9]).unwrap(), (256, &[9u8][..]));
    }

    #[test]
    fn bad_frames_say_why() {
        assert!(unframe(&[]).unwrap_err().to_string().contains("empty"));
        assert!(unframe(&[1, 0, 0, 0, 1])
            .unwrap_err()
            .to_string()
            .contains("magic byte is 0x01"));
        assert!(unframe(&[0, 0, 1])
            .unwrap_err()
            .to_string()
            .contains("shorter"));
    }
}
