//! Where meshctl finds its server and token: flags beat environment variables (both through
//! clap), which beat the config file (`--config`, `MESHCTL_CONFIG`, or
//! `$XDG_CONFIG_HOME/meshctl/config.yaml`, else `~/.config/meshctl/config.yaml`).
//!
//! ```yaml
//! server: http://127.0.0.1:9090
//! token_file: ~/.config/meshctl/token    # relative paths are relative to this file
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The server's own default admin address (`xds-server --admin-addr`).
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:9090";

/// The config file's fields; unknown ones are refused so a typo does not go unnoticed.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub server: Option<String>,
    pub token_file: Option<PathBuf>,
}

/// What meshctl connects with, after flags, environment and file were merged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub server: String,
    pub token_file: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("the config file {path} is not valid: {reason} (it takes `server` and `token_file`)")]
    Invalid { path: String, reason: String },
    #[error(
        "cannot read the token file {path}: {reason} (set it with --token-file, \
         MESHCTL_TOKEN_FILE or `token_file:` in the config file)"
    )]
    Token { path: String, reason: String },
}

/// Where the config file is looked for when neither `--config` nor `MESHCTL_CONFIG` says.
pub fn default_path() -> Option<PathBuf> {
    let xdg = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute());
    let base = xdg.or_else(|| home().map(|h| h.join(".config")))?;
    Some(base.join("meshctl").join("config.yaml"))
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

/// Merges `server` and `token_file` (from flags or environment, already merged by clap) with
/// the config file. `explicit_config` must exist; the default one may be absent.
pub fn resolve(
    server: Option<String>,
    token_file: Option<PathBuf>,
    explicit_config: Option<PathBuf>,
) -> Result<Settings, ConfigError> {
    let file = match explicit_config {
        Some(path) => Some(read_file(&path)?),
        None => match default_path().filter(|p| p.exists()) {
            Some(path) => Some(read_file(&path)?),
            None => None,
        },
    };
    let (file_server, file_token) = match file {
        Some((config, dir)) => (
            config.server,
            config
                .token_file
                .map(|t| relative_to(&dir, &expand_home(&t))),
        ),
        None => (None, None),
    };
    Ok(Settings {
        server: server
            .or(file_server)
            .unwrap_or_else(|| DEFAULT_SERVER.into()),
        token_file: token_file.or(file_token),
    })
}

/// The config file and the directory holding it (for relative `token_file`s).
fn read_file(path: &Path) -> Result<(FileConfig, PathBuf), ConfigError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
        path: shown.clone(),
        reason: e.to_string(),
    })?;
    let config = if text.trim().is_empty() {
        FileConfig::default()
    } else {
        serde_yaml_ng::from_str(&text).map_err(|e| ConfigError::Invalid {
            path: shown,
            reason: e.to_string(),
        })?
    };
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    Ok((config, dir))
}

fn expand_home(path: &Path) -> PathBuf {
    match (path.strip_prefix("~"), home()) {
        (Ok(rest), Some(home)) => home.join(rest),
        _ => path.to_path_buf(),
    }
}

fn relative_to(dir: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        dir.join(path)
    }
}

/// The bearer token in `path`, without surrounding whitespace. Errors name the file, never
/// its content.
pub fn read_token(path: &Path) -> Result<String, ConfigError> {
    let failed = |reason: &str| ConfigError::Token {
        path: path.display().to_string(),
        reason: reason.to_string(),
    };
    let text = std::fs::read_to_string(path).map_err(|e| failed(&e.to_string()))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(failed("it is empty"));
    }
    Ok(token.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_env_beat_the_file_which_beats_the_default() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, "server: http://file:1\ntoken_file: token\n").unwrap();

        let from_file = resolve(None, None, Some(path.clone())).unwrap();
        assert_eq!(from_file.server, "http://file:1");
        assert_eq!(from_file.token_file, Some(dir.path().join("token")));

        let from_flags = resolve(
            Some("http://flag:2".into()),
            Some("/abs/token".into()),
            Some(path),
        )
        .unwrap();
        assert_eq!(from_flags.server, "http://flag:2");
        assert_eq!(from_flags.token_file, Some(PathBuf::from("/abs/token")));
    }

    #[test]
    fn a_named_config_file_must_exist_and_be_valid() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.yaml");
        assert!(matches!(
            resolve(None, None, Some(missing)),
            Err(ConfigError::Read { .. })
        ));
        let typo = dir.path().join("typo.yaml");
        std::fs::write(&typo, "servr: http://x:1\n").unwrap();
        let err = resolve(None, None, Some(typo)).unwrap_err().to_string();
        assert!(err.contains("servr") && err.contains("token_file"), "{err}");
    }

    #[test]
    fn tokens_are_trimmed_and_never_in_messages() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "s3cret\n").unwrap();
        assert_eq!(read_token(&path).unwrap(), "s3cret");
        std::fs::write(&path, " \n").unwrap();
        let err = read_token(&path).unwrap_err().to_string();
        assert!(err.contains("empty") && err.contains("token"), "{err}");
    }
}
