//! Checks for the generated message codecs (filled in once the dispatch enums exist).

/// Writes seeds for the message targets through `put(target, name, bytes)`.
pub fn seeds(put: &mut dyn FnMut(&str, &str, &[u8])) {
    let _ = put;
}
