//! Personal values in the HTTP layer: held in memory that is wiped when it is
//! dropped, from the parsed request to the response body's bytes.
//!
//! [`SecretString`] is what request and response types use for values: it
//! deserializes by taking serde's `String` (moved, not copied), serializes as
//! a plain JSON string, redacts itself in `Debug`, and is wiped on drop.
//! [`json_response`] serializes a response into a buffer that hyper sends and
//! that is wiped when hyper lets go of it; [`wipe_bytes`] wipes a request body
//! once it has been parsed. (A best effort: bytes hyper copies into its own
//! buffers, and the kernel's socket buffers, are out of reach.)

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::{Zeroize, Zeroizing};

/// A personal value: wiped on drop, never printed by `Debug`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretString(Zeroizing<String>);

impl SecretString {
    /// Wraps a value (moved, not copied).
    pub fn new(value: String) -> Self {
        SecretString(Zeroizing::new(value))
    }

    /// The value.
    pub fn expose(&self) -> &str {
        self.0.as_str()
    }
}

impl From<Zeroizing<String>> for SecretString {
    fn from(v: Zeroizing<String>) -> Self {
        SecretString(v)
    }
}

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretString(…)")
    }
}

impl<'de> Deserialize<'de> for SecretString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(SecretString::new)
    }
}

impl Serialize for SecretString {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.as_str())
    }
}

/// Bytes that are wiped when the last reference to them goes.
struct WipedOnDrop(Vec<u8>);

impl AsRef<[u8]> for WipedOnDrop {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for WipedOnDrop {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// A body whose bytes are wiped once sent (when hyper drops them).
pub fn wiped_body(bytes: Vec<u8>) -> Body {
    Body::from(Bytes::from_owner(WipedOnDrop(bytes)))
}

/// `value` as an `application/json` response whose body is wiped once sent.
pub fn json_response<T: Serialize>(status: StatusCode, value: &T) -> Response {
    // One pass into a buffer that wipes what it outgrows (see `WipingWriter`).
    let mut buf = WipingWriter(Zeroizing::new(Vec::with_capacity(WipingWriter::INITIAL)));
    if let Err(e) = serde_json::to_writer(&mut buf, value) {
        return crate::problem::ApiError::internal(&e).into_response();
    }
    let bytes = std::mem::take(&mut *buf.0);
    let mut resp = (status, wiped_body(bytes)).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// A buffer that grows by hand: when a write does not fit, the bytes move to
/// a buffer at least twice as large and the old one is wiped (a `Vec`'s own
/// growth would free the old allocation unwiped). So a response is
/// serialized once, not once to size it and once to write it, and no copy of
/// it is left behind; what is in it is wiped on drop, on error too.
struct WipingWriter(Zeroizing<Vec<u8>>);

impl WipingWriter {
    /// Enough for one item view and most problem details.
    const INITIAL: usize = 1024;
}

impl std::io::Write for WipingWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let need = self.0.len() + bytes.len();
        if need > self.0.capacity() {
            let mut grown = Vec::with_capacity(need.max(self.0.capacity() * 2));
            grown.extend_from_slice(&self.0);
            // The old buffer is wiped when the `Zeroizing` that held it drops.
            drop(std::mem::replace(&mut self.0, Zeroizing::new(grown)));
        }
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Wipes a request body that held personal values, if nothing else holds it.
pub fn wipe_bytes(bytes: Bytes) {
    if let Ok(mut owned) = bytes.try_into_mut() {
        owned.as_mut().zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_round_trips_as_a_plain_string_and_never_prints() {
        let s: SecretString = serde_json::from_str("\"4111111111111111\"").unwrap_or_default();
        assert_eq!(s.expose(), "4111111111111111");
        assert_eq!(serde_json::to_string(&s).unwrap_or_default(), "\"4111111111111111\"");
        assert!(!format!("{s:?}").contains("4111"));
    }

    #[test]
    fn a_uniquely_held_body_is_wiped() {
        let b = Bytes::from(b"secret".to_vec());
        let view = b.clone();
        drop(view);
        wipe_bytes(b);
    }
}
