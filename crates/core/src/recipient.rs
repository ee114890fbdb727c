//! Who a mark was made for.
//!
//! The pilot and the slot roles are the same for every mark of a studio
//! key, so the geometric search runs once per image whoever the recipient
//! is. The chips that carry the payload are keyed by the studio key *and*
//! the recipient, so two vendors' marks are statistically independent: the
//! payload test of one vendor behaves, on another vendor's mark, exactly as
//! on an unmarked image.

use std::fmt;

use serde::Serialize;

/// Whose payload chips a mark uses.
///
/// ```
/// use tattle_core::Recipient;
/// assert_eq!(Recipient::Vendor(7).to_string(), "vendor 7");
/// assert_eq!(Recipient::Studio.to_string(), "studio");
/// assert_ne!(Recipient::Vendor(7).key_context(), Recipient::Vendor(8).key_context());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Recipient {
    /// Anyone holding the studio key: the channel of `tattle embed
    /// --payload`, where the payload's meaning is the caller's business.
    #[default]
    Studio,
    /// A vendor registered in the studio's ledger.
    Vendor(u16),
}

impl Recipient {
    /// The bytes mixed into the payload-chip key derivation. Empty for the
    /// studio channel, so studio marks keep the derivation of the first
    /// release.
    pub fn key_context(self) -> Vec<u8> {
        match self {
            Recipient::Studio => Vec::new(),
            Recipient::Vendor(id) => {
                let mut bytes = b"vendor:".to_vec();
                bytes.extend_from_slice(&id.to_le_bytes());
                bytes
            }
        }
    }
}

impl fmt::Display for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Recipient::Studio => write!(f, "studio"),
            Recipient::Vendor(id) => write!(f, "vendor {id}"),
        }
    }
}
