//! The studio's secret key and everything derived from it.
//!
//! A [`Key`] is 32 random bytes. Every keyed sequence of the mark is drawn
//! from a ChaCha20 stream whose seed is derived from the key with BLAKE3's
//! key-derivation mode (`derive_key`), one context string per purpose, so
//! that the sequences are independent of each other and learning one reveals
//! nothing about the key or the others.

use std::fmt;
use std::path::Path;

use crate::error::{Error, Result};

/// Length of a key in bytes.
pub const KEY_BYTES: usize = 32;

const FILE_TAG: &str = "tattle-key-v1";
const FINGERPRINT_CONTEXT: &str = "tattle 2026-11 key fingerprint v1";

/// A studio's secret watermarking key.
///
/// The key never appears in `Debug` output; use [`Key::fingerprint`] to
/// refer to it in logs and records.
///
/// ```
/// use tattle_core::Key;
/// let key = Key::from_bytes([7u8; 32]);
/// let text = key.to_file_text();
/// let again = Key::from_file_text(&text).unwrap();
/// assert_eq!(key.fingerprint(), again.fingerprint());
/// assert!(!format!("{key:?}").contains("0707"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Key {
    bytes: [u8; KEY_BYTES],
}

impl Key {
    /// Wraps raw key bytes.
    pub fn from_bytes(bytes: [u8; KEY_BYTES]) -> Self {
        Self { bytes }
    }

    /// Draws a fresh key from the operating system's cryptographic random
    /// number generator.
    pub fn generate() -> Result<Self> {
        let mut bytes = [0u8; KEY_BYTES];
        getrandom::fill(&mut bytes).map_err(|e| Error::Random(e.to_string()))?;
        Ok(Self { bytes })
    }

    /// Parses the text of a key file: a line `tattle-key-v1 <64 hex digits>`;
    /// blank lines and lines starting with `#` are ignored.
    pub fn from_file_text(text: &str) -> Result<Self> {
        let malformed = |reason: &str| Error::MalformedKey {
            reason: reason.to_owned(),
        };
        let mut lines = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'));
        let line = lines
            .next()
            .ok_or_else(|| malformed("the file holds no key line"))?;
        if lines.next().is_some() {
            return Err(malformed("the file holds more than one key line"));
        }
        let hex = line
            .strip_prefix(FILE_TAG)
            .ok_or_else(|| malformed("the key line does not start with \"tattle-key-v1\""))?
            .trim();
        if hex.len() != 2 * KEY_BYTES {
            return Err(malformed("the key must be 64 hexadecimal digits"));
        }
        let mut bytes = [0u8; KEY_BYTES];
        for (byte, pair) in bytes.iter_mut().zip(hex.as_bytes().chunks_exact(2)) {
            let digits = std::str::from_utf8(pair).map_err(|_| malformed("non-ASCII key text"))?;
            *byte = u8::from_str_radix(digits, 16)
                .map_err(|_| malformed("the key contains a character that is not hexadecimal"))?;
        }
        Ok(Self { bytes })
    }

    /// Reads and parses a key file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|cause| Error::Io {
            path: path.to_owned(),
            cause,
        })?;
        Self::from_file_text(&text)
    }

    /// A warning when the key file at `path` can be read or written by
    /// users other than its owner (Unix permissions); `None` when it is
    /// private or the platform has no such permissions.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// use tattle_core::Key;
    /// let path = dir.path().join("studio.key");
    /// Key::generate().unwrap().write_new(&path).unwrap();
    /// assert_eq!(Key::exposure_warning(&path), None);
    /// # #[cfg(unix)] {
    /// use std::os::unix::fs::PermissionsExt;
    /// std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    /// assert!(Key::exposure_warning(&path).unwrap().contains("chmod 600"));
    /// # }
    /// ```
    pub fn exposure_warning(path: &Path) -> Option<String> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Some(format!(
                    "key file {} is accessible to other users (mode {mode:03o}); anyone who can read it can read and forge your marks: chmod 600 {}",
                    path.display(),
                    path.display()
                ));
            }
        }
        #[cfg(not(unix))]
        let _ = path;
        None
    }

    /// Writes the key to a new file readable by its owner only (mode 0600
    /// on Unix). Refuses to replace an existing file: losing a studio key
    /// makes every mark made with it unreadable.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// use tattle_core::Key;
    /// let path = dir.path().join("studio.key");
    /// let key = Key::generate().unwrap();
    /// key.write_new(&path).unwrap();
    /// assert_eq!(Key::from_file(&path).unwrap(), key);
    /// assert!(Key::generate().unwrap().write_new(&path).is_err());
    /// ```
    pub fn write_new(&self, path: &Path) -> Result<()> {
        use std::io::Write;
        let io = |cause| Error::Io {
            path: path.to_owned(),
            cause,
        };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                Error::KeyExists {
                    path: path.to_owned(),
                }
            } else {
                io(e)
            }
        })?;
        file.write_all(self.to_file_text().as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)
    }

    /// The text written to a key file.
    pub fn to_file_text(&self) -> String {
        let hex: String = self.bytes.iter().map(|b| format!("{b:02x}")).collect();
        format!("# tattle secret key: keep private, never share or commit\n{FILE_TAG} {hex}\n")
    }

    /// A short public name for the key (16 hex digits), safe to log and to
    /// store in ledgers. It cannot be turned back into the key.
    pub fn fingerprint(&self) -> String {
        let digest = blake3::derive_key(FINGERPRINT_CONTEXT, &self.bytes);
        digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
    }

    /// A 32-byte seed for one purpose, named by a context string that is
    /// unique to that purpose. `extra` further separates seeds within a
    /// purpose (for instance a vendor id); pass `&[]` when there is none.
    pub fn derive(&self, context: &str, extra: &[u8]) -> [u8; 32] {
        let mut material = Vec::with_capacity(KEY_BYTES + extra.len());
        material.extend_from_slice(&self.bytes);
        material.extend_from_slice(extra);
        blake3::derive_key(context, &material)
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key(fingerprint {})", self.fingerprint())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivation_is_deterministic_and_separated() {
        let key = Key::from_bytes([1u8; 32]);
        assert_eq!(key.derive("a", b""), key.derive("a", b""));
        assert_ne!(key.derive("a", b""), key.derive("b", b""));
        assert_ne!(key.derive("a", b"1"), key.derive("a", b"2"));
        assert_ne!(key.derive("a", b""), Key::from_bytes([2u8; 32]).derive("a", b""));
    }

    #[test]
    fn derivation_is_pinned() {
        // A golden value: if this changes, every mark ever made becomes unreadable.
        let key = Key::from_bytes([0u8; 32]);
        assert_eq!(key.fingerprint(), GOLDEN_FINGERPRINT);
    }
    const GOLDEN_FINGERPRINT: &str = "4b352856c5359208";

    #[test]
    fn file_text_round_trips() {
        let key = Key::generate().unwrap();
        assert_eq!(Key::from_file_text(&key.to_file_text()).unwrap(), key);
    }

    #[test]
    fn malformed_keys_are_refused_with_a_reason() {
        for text in [
            "",
            "# only a comment\n",
            "tattle-key-v1 abcd",
            "tattle-key-v2 0000000000000000000000000000000000000000000000000000000000000000",
            "tattle-key-v1 zz00000000000000000000000000000000000000000000000000000000000000",
            "tattle-key-v1 ü000000000000000000000000000000000000000000000000000000000000000",
            "\u{0}\u{1}binary",
        ] {
            let err = Key::from_file_text(text).unwrap_err();
            assert!(matches!(err, Error::MalformedKey { .. }), "{text:?}: {err}");
        }
    }
}
