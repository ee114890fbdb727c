//! A studio workspace: a folder holding `tattle.toml`, the secret key and
//! the ledger, found the way git finds a repository.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tattle_core::Key;

use crate::error::{Error, Result};
use crate::ledger::Ledger;

/// Name of the configuration file that marks a studio workspace.
pub const CONFIG_FILE: &str = "tattle.toml";

/// The contents of `tattle.toml`. Relative paths are relative to the
/// workspace folder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The studio's name, shown in reports.
    pub studio: String,
    /// The secret key file.
    pub key: PathBuf,
    /// The ledger database.
    pub ledger: PathBuf,
    /// Default embedding strength for `stamp`.
    #[serde(default = "default_strength")]
    pub strength: f32,
    /// Default JPEG quality for stamped JPEG outputs.
    #[serde(default = "default_quality")]
    pub jpeg_quality: u8,
}

fn default_strength() -> f32 {
    1.0
}

fn default_quality() -> u8 {
    95
}

impl Config {
    /// The configuration `init` writes.
    pub fn new(studio: &str) -> Self {
        Self {
            studio: studio.to_owned(),
            key: PathBuf::from("tattle.key"),
            ledger: PathBuf::from("ledger.sqlite"),
            strength: default_strength(),
            jpeg_quality: default_quality(),
        }
    }

    fn check(&self, path: &Path) -> Result<()> {
        let bad = |reason: String| Error::Config {
            path: path.to_owned(),
            reason,
        };
        if !(self.strength > 0.0 && self.strength <= 10.0) {
            return Err(bad(format!("strength {} is outside (0, 10]", self.strength)));
        }
        if !(1..=100).contains(&self.jpeg_quality) {
            return Err(bad(format!(
                "jpeg_quality {} is outside 1..=100",
                self.jpeg_quality
            )));
        }
        Ok(())
    }
}

/// An open studio workspace.
///
/// ```
/// use tattle_studio::Studio;
/// # let dir = tempfile::tempdir().unwrap();
/// let studio = Studio::init(dir.path(), "Nimbus Pictures").unwrap();
/// studio.ledger().unwrap().add_vendor("Acme VFX", None).unwrap();
///
/// // Any folder below the workspace finds it, as git finds a repository.
/// std::fs::create_dir_all(dir.path().join("shots/010")).unwrap();
/// let found = Studio::discover(&dir.path().join("shots/010")).unwrap();
/// assert_eq!(found.config().studio, "Nimbus Pictures");
/// assert_eq!(found.key().unwrap().fingerprint(), studio.key().unwrap().fingerprint());
/// ```
#[derive(Clone, Debug)]
pub struct Studio {
    root: PathBuf,
    config: Config,
}

impl Studio {
    /// Creates a workspace in `dir` (created if missing): `tattle.toml`, a
    /// fresh key (mode 0600) and an empty ledger. Refuses if `dir` already
    /// holds a workspace, key or ledger.
    pub fn init(dir: &Path, name: &str) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
        let root = dir.canonicalize().map_err(Error::io(dir))?;
        let config_path = root.join(CONFIG_FILE);
        let config = Config::new(name);
        for existing in [&config_path, &root.join(&config.key), &root.join(&config.ledger)] {
            if existing.exists() {
                return Err(Error::StudioExists {
                    path: existing.clone(),
                });
            }
        }
        let key = Key::generate().map_err(|source| Error::Engine {
            path: root.join(&config.key),
            cause: source,
        })?;
        key.write_new(&root.join(&config.key))
            .map_err(|source| Error::Engine {
                path: root.join(&config.key),
                cause: source,
            })?;
        Ledger::create(&root.join(&config.ledger), &key)?;
        let text = toml::to_string(&config).map_err(|e| Error::Config {
            path: config_path.clone(),
            reason: e.to_string(),
        })?;
        let text =
            format!("# tattle studio workspace. The key file is secret: never share or commit it.\n{text}");
        // Written last: a workspace exists once its configuration does.
        crate::files::write_atomic(&config_path, text.as_bytes())?;
        Ok(Self { root, config })
    }

    /// Opens the workspace in `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        let path = dir.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&path).map_err(Error::io(&path))?;
        let config: Config = toml::from_str(&text).map_err(|e| Error::Config {
            path: path.clone(),
            reason: e.message().to_owned(),
        })?;
        config.check(&path)?;
        Ok(Self {
            root: dir.to_owned(),
            config,
        })
    }

    /// Finds the workspace holding `start`: `start` itself or the nearest
    /// folder above it with a `tattle.toml`.
    pub fn discover(start: &Path) -> Result<Self> {
        let start = start.canonicalize().map_err(Error::io(start))?;
        for dir in start.ancestors() {
            if dir.join(CONFIG_FILE).is_file() {
                return Self::open(dir);
            }
        }
        Err(Error::NoStudio { start })
    }

    /// The workspace folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The key file's path.
    pub fn key_path(&self) -> PathBuf {
        self.root.join(&self.config.key)
    }

    /// Reads the studio key.
    pub fn key(&self) -> Result<Key> {
        let path = self.key_path();
        Key::from_file(&path).map_err(|source| Error::Engine { path, cause: source })
    }

    /// Opens the ledger.
    pub fn ledger(&self) -> Result<Ledger> {
        Ledger::open(&self.root.join(&self.config.ledger))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn init_refuses_to_replace_a_workspace() {
        let dir = tempfile::tempdir().unwrap();
        Studio::init(dir.path(), "A").unwrap();
        assert!(matches!(
            Studio::init(dir.path(), "B"),
            Err(Error::StudioExists { .. })
        ));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("tattle.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn discovery_fails_clearly_outside_a_workspace() {
        let dir = tempfile::tempdir().unwrap();
        let err = Studio::discover(dir.path()).unwrap_err();
        assert!(matches!(err, Error::NoStudio { .. }), "{err}");
    }

    #[test]
    fn a_broken_configuration_names_the_file_and_the_cause() {
        let dir = tempfile::tempdir().unwrap();
        Studio::init(dir.path(), "A").unwrap();
        let config = dir.path().join(CONFIG_FILE);
        std::fs::write(&config, "studio = \"A\"\nkey = 3\n").unwrap();
        let err = Studio::open(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("tattle.toml") && err.contains("invalid type"),
            "{err}"
        );
        std::fs::write(
            &config,
            "studio = \"A\"\nkey = \"k\"\nledger = \"l\"\nstrength = -1\n",
        )
        .unwrap();
        let err = Studio::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("strength"), "{err}");
    }
}
