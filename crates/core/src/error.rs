//! The error type shared by the tattle library crates.

use std::path::PathBuf;

/// Everything that can go wrong inside tattle's libraries.
///
/// Messages are lowercase and name the cause; the binary adds the file name.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A key file or key text could not be understood.
    #[error("malformed key: {reason}")]
    MalformedKey {
        /// What was wrong with it.
        reason: String,
    },
    /// A new key would replace an existing file.
    #[error("{path} already exists; refusing to overwrite a key")]
    KeyExists {
        /// The existing file.
        path: PathBuf,
    },
    /// A payload was not 16 hexadecimal digits.
    #[error("invalid payload {text:?}: expected exactly 16 hexadecimal digits")]
    InvalidPayload {
        /// The text that was given.
        text: String,
    },
    /// The image is smaller than the smallest area that can carry or reveal the mark.
    #[error("image is {width}x{height} pixels; at least {min_side}x{min_side} are needed")]
    ImageTooSmall {
        /// Width of the image.
        width: u32,
        /// Height of the image.
        height: u32,
        /// Minimum side length.
        min_side: u32,
    },
    /// An option was outside its valid range.
    #[error("invalid parameter {name}: {reason}")]
    InvalidParameter {
        /// The option's name.
        name: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// The pixel buffer does not match the stated dimensions.
    #[error("pixel buffer holds {actual} values, {expected} expected for the stated size")]
    BufferSize {
        /// Values expected.
        expected: usize,
        /// Values given.
        actual: usize,
    },
    /// The image's pixel layout is not supported.
    #[error("unsupported pixel layout: {0}")]
    UnsupportedLayout(String),
    /// Reading or writing a file failed.
    #[error("cannot access {path}: {cause}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        cause: std::io::Error,
    },
    /// A freshly marked image does not read back with its payload: it has
    /// too little texture or area to carry a mark (or an earlier mark is
    /// stronger).
    #[error("the mark does not read back from the marked image: {reason}")]
    MarkUnreadable {
        /// What was read instead.
        reason: String,
    },
    /// The operating system's random number generator failed.
    #[error("the operating system's random number generator failed: {0}")]
    Random(String),
}

/// Shorthand for results of tattle's library crates.
pub type Result<T, E = Error> = std::result::Result<T, E>;
