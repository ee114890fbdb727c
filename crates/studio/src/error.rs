//! The errors of the studio workflow.

use std::path::PathBuf;

/// Everything that can go wrong in the studio workflow. Every variant that
/// concerns a file names it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{path}: {cause}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        cause: std::io::Error,
    },
    /// An image could not be decoded or encoded.
    #[error("{path}: {cause}")]
    Image {
        /// The file.
        path: PathBuf,
        /// The codec's reason.
        cause: image::ImageError,
    },
    /// A file is not in an image format tattle reads or writes.
    #[error("{path}: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong with its format.
        reason: String,
    },
    /// The watermark engine refused (image too small, bad option, bad key…).
    #[error("{path}: {cause}")]
    Engine {
        /// The file concerned.
        path: PathBuf,
        /// The engine's reason.
        cause: tattle_core::Error,
    },
    /// The studio configuration file could not be understood.
    #[error("{path}: {reason}")]
    Config {
        /// The configuration file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// No studio workspace was found.
    #[error("no tattle studio found in {start} or any folder above it (create one with `tattle init`, or pass --studio DIR / set TATTLE_STUDIO)")]
    NoStudio {
        /// Where the search started.
        start: PathBuf,
    },
    /// `init` found a studio already there.
    #[error("{path} already exists; refusing to replace a studio workspace")]
    StudioExists {
        /// The existing configuration file.
        path: PathBuf,
    },
    /// The ledger database failed.
    #[error("ledger {path}: {cause}")]
    Ledger {
        /// The database file.
        path: PathBuf,
        /// SQLite's reason.
        cause: rusqlite::Error,
    },
    /// The ledger was written by a newer tattle.
    #[error("ledger {path} has schema version {found}; this tattle knows up to {known} (upgrade tattle)")]
    SchemaTooNew {
        /// The database file.
        path: PathBuf,
        /// Its schema version.
        found: i64,
        /// The newest this build knows.
        known: i64,
    },
    /// The key does not belong to the ledger.
    #[error("the key (fingerprint {key}) is not the key of ledger {path} (fingerprint {ledger}); marks made with it could never be traced there")]
    KeyMismatch {
        /// The database file.
        path: PathBuf,
        /// Fingerprint of the key in use.
        key: String,
        /// Fingerprint the ledger was created with.
        ledger: String,
    },
    /// A vendor name is already registered.
    #[error("vendor {name:?} is already registered")]
    VendorExists {
        /// The name.
        name: String,
    },
    /// A vendor name is not registered.
    #[error("no vendor named {name:?} in the ledger (see `tattle vendor list`)")]
    UnknownVendor {
        /// The name.
        name: String,
    },
    /// A vendor name is empty or unusable.
    #[error("invalid vendor name {name:?}: {reason}")]
    InvalidVendorName {
        /// The name.
        name: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// Every vendor id is taken.
    #[error("the ledger already holds the maximum of {max} vendors")]
    TooManyVendors {
        /// The limit.
        max: u32,
    },
    /// Every issuance serial is taken.
    #[error("the ledger has used all 2^48 issuance serials")]
    SerialsExhausted,
    /// The image already carries this studio's mark.
    #[error("{path} already carries this studio's mark (false-positive probability {probability:.1e}); stamping it again would make tracing ambiguous (pass --force to stamp anyway)")]
    AlreadyMarked {
        /// The image.
        path: PathBuf,
        /// The detection's false-positive probability.
        probability: f64,
    },
    /// An output would overwrite its own source.
    #[error("{path} is the source file itself; refusing to overwrite it")]
    OutputIsSource {
        /// The file.
        path: PathBuf,
    },
}

/// Shorthand for results of the studio workflow.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |cause| Error::Io { path, cause }
    }
}
