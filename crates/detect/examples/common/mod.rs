//! What the debugging examples share.

use tattle_detect::Key;

/// The examples' key: `[3; 32]`, or `[B; 32]` with `SWEEP_KEY_BYTE=B`, so
/// that a miss seen in one example can be looked at in another.
pub fn sweep_key() -> Result<Key, std::num::ParseIntError> {
    let byte = match std::env::var("SWEEP_KEY_BYTE") {
        Ok(value) => value.parse()?,
        Err(_) => 3,
    };
    Ok(Key::from_bytes([byte; 32]))
}
