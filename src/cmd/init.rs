//! `mongomon init`: a ready configuration from the shipped template, for
//! automated deployments.
//!
//! The deployment guide automates installs by replacing `@API_KEY@` in an
//! unconfigured agent's settings. `config/mongomon.toml.template` carries
//! `@API_KEY@` and `@UPLOAD_URL@` (so `sed` works too); `init` fills them,
//! replaces the targets block with `--target`s, checks that the result is a
//! valid configuration, and writes it mode 0600, never over an existing file
//! unless told to.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};

use crate::config;

/// The template shipped in `config/` (and in the .deb's examples).
pub const TEMPLATE: &str = include_str!("../../config/mongomon.toml.template");

const BEGIN_TARGETS: &str = "# BEGIN TARGETS";
const END_TARGETS: &str = "# END TARGETS";

/// What `init` was asked for.
#[derive(Debug, Clone, Default)]
pub struct InitRequest {
    pub api_key: Option<String>,
    /// Put `api_key_file = PATH` in the config instead of the key itself.
    pub api_key_file: Option<String>,
    pub upload_url: String,
    pub targets: Vec<String>,
}

/// The configuration text for `req`, validated.
pub fn render(req: &InitRequest) -> anyhow::Result<String> {
    if req.upload_url.trim().is_empty() {
        bail!("init needs --upload-url URL (the receiver, e.g. http://127.0.0.1:8428/write)");
    }
    if req.api_key.is_some() && req.api_key_file.is_some() {
        bail!("init takes --api-key or --api-key-file, not both");
    }
    let quote = |s: &str| toml::Value::String(s.to_string()).to_string();
    let mut text = TEMPLATE.replace("\"@UPLOAD_URL@\"", &quote(&req.upload_url));
    let key_line = "api_key = \"@API_KEY@\"";
    text = match (&req.api_key, &req.api_key_file) {
        (Some(k), _) => text.replace(key_line, &format!("api_key = {}", quote(k))),
        (None, Some(f)) => text.replace(key_line, &format!("api_key_file = {}", quote(f))),
        // No key given: the environment (MONGOMON_UPLOAD__API_KEY) or a
        // receiver without authentication.
        (None, None) => text.replace(
            key_line,
            "# api_key: none given to `mongomon init`; set MONGOMON_UPLOAD__API_KEY or api_key_file if the receiver needs one.",
        ),
    };
    if !req.targets.is_empty() {
        let (Some(start), Some(end)) = (text.find(BEGIN_TARGETS), text.find(END_TARGETS)) else {
            bail!("the built-in template lost its targets markers");
        };
        let mut block = String::from("# Targets from `mongomon init --target`.\n");
        for t in &req.targets {
            block.push_str(&format!("[[targets]]\nuri = {}\n", quote(t)));
        }
        let end_line = text[end..]
            .find('\n')
            .map(|i| end + i + 1)
            .unwrap_or(text.len());
        text.replace_range(start..end_line, &block);
    }
    // Check the result the way `run` will, except that a key file may be
    // provisioned after the configuration.
    let mut raw = config::load_str(&text, &serde_json::json!({}))?;
    for u in &mut raw.upload.entries {
        if u.api_key_file.is_some() {
            u.api_key_file = None;
            u.api_key = Some("placeholder".into());
        }
    }
    config::validate(&raw, None)?;
    Ok(text)
}

/// Writes `text` to `path` with mode 0600; an existing file is an error
/// unless `force`. `-` writes to stdout.
pub fn write(path: &Path, text: &str, force: bool) -> anyhow::Result<()> {
    if path == Path::new("-") {
        std::io::stdout().write_all(text.as_bytes())?;
        return Ok(());
    }
    if path.exists() && !force {
        bail!(
            "{} already exists; pass --force to overwrite it, or --output PATH to write elsewhere",
            path.display()
        );
    }
    // Through a private temporary file and a rename, so the secret is never
    // readable by others, not even for a moment.
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = dir.join(format!(".mongomon-init.{}", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| {
        format!(
            "cannot write {}; check that its directory exists and is writable",
            path.display()
        )
    })
}

/// `mongomon init`: renders the template and writes it (mode 0600).
pub fn command(
    req: InitRequest,
    output: &std::path::Path,
    force: bool,
) -> anyhow::Result<std::process::ExitCode> {
    let text = render(&req)?;
    write(output, &text, force)?;
    if output.as_os_str() != "-" {
        eprintln!("Wrote {} (mode 0600).", output.display());
    }
    Ok(std::process::ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_and_targets_are_filled() {
        let text = render(&InitRequest {
            api_key: Some("k\"ey".into()),
            upload_url: "https://mon.example.net/write".into(),
            targets: vec![
                "mongodb://a:1".into(),
                "mongodb://b:2/?replicaSet=rs0".into(),
            ],
            ..Default::default()
        })
        .unwrap();
        assert!(
            !text.lines().any(|l| !l.starts_with('#') && l.contains('@')),
            "placeholders left: {text}"
        );
        let raw = config::load_str(&text, &serde_json::json!({})).unwrap();
        assert_eq!(raw.upload.entries[0].api_key.as_deref(), Some("k\"ey"));
        assert_eq!(raw.upload.entries[0].url, "https://mon.example.net/write");
        let uris: Vec<&str> = raw.targets.iter().map(|t| t.uri.as_str()).collect();
        assert_eq!(uris, ["mongodb://a:1", "mongodb://b:2/?replicaSet=rs0"]);
    }

    #[test]
    fn key_file_or_no_key_and_bad_url() {
        let text = render(&InitRequest {
            api_key_file: Some("/etc/mongomon/api.key".into()),
            upload_url: "http://r/".into(),
            ..Default::default()
        })
        .unwrap();
        let raw = config::load_str(&text, &serde_json::json!({})).unwrap();
        assert_eq!(
            raw.upload.entries[0].api_key_file.as_deref(),
            Some("/etc/mongomon/api.key")
        );
        assert_eq!(raw.targets.len(), 1, "the template's local target stays");
        let text = render(&InitRequest {
            upload_url: "http://r/".into(),
            ..Default::default()
        })
        .unwrap();
        assert!(config::load_str(&text, &serde_json::json!({}))
            .unwrap()
            .upload
            .entries[0]
            .api_key
            .is_none());
        let err = render(&InitRequest {
            upload_url: "ftp://r/".into(),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("upload.url"), "{err}");
    }

    #[test]
    fn sed_on_the_template_gives_a_valid_config() {
        let text = TEMPLATE
            .replace("@API_KEY@", "abc")
            .replace("@UPLOAD_URL@", "http://127.0.0.1:8428/write");
        let raw = config::load_str(&text, &serde_json::json!({})).unwrap();
        config::validate(&raw, None).unwrap();
    }
}
