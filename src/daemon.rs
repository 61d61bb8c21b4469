//! Running as a service: the root refusal, the pid file, the warning about
//! a configuration file that others can read while it holds a secret, and
//! the refusal of a configuration file or spool directory others can write.
//!
//! The deployment guide asks that the agent never run as root; a monitoring
//! agent needs no privilege beyond reaching the network, so `run` refuses uid
//! 0 unless told otherwise. The pid file is what the init script, logrotate's
//! `postrotate` and `nohup` users signal; it is written atomically and
//! removed on a clean exit only if it still names this process.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::config::RawConfig;

/// How to create the service user, quoted by the refusal.
pub const CREATE_USER_HINT: &str =
    "useradd --system --user-group --home-dir /var/lib/mongomon --shell /usr/sbin/nologin mongomon";

/// Why `run` refuses to start as root, or `None` when it may start.
/// `euid` is a parameter so the decision can be tested without being root.
pub fn root_refusal(euid: u32, allow_root: bool) -> Option<String> {
    if euid != 0 || allow_root {
        return None;
    }
    Some(format!(
        "Refusing to run as root: the agent needs no privileges. Create a service user ({CREATE_USER_HINT}) \
         and start mongomon as that user (the packaged systemd unit and init script do), or pass --allow-root to override."
    ))
}

/// The effective user id of this process.
pub fn euid() -> u32 {
    // SAFETY: geteuid(2) has no preconditions and touches no memory.
    unsafe { libc::geteuid() }
}

/// A pid file that names this process while it lives.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
    pid: u32,
}

impl PidFile {
    /// Writes the current pid to `path` (through a temporary file and a
    /// rename, so a reader never sees a half-written number).
    pub fn create(path: &Path) -> io::Result<Self> {
        let pid = std::process::id();
        let tmp = path.with_extension(format!("tmp{pid}"));
        std::fs::write(&tmp, format!("{pid}\n"))
            .and_then(|_| std::fs::rename(&tmp, path))
            .map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                io::Error::new(
                    e.kind(),
                    format!(
                        "cannot write the pid file {} ({e}); create its directory, owned by the agent's user, or change --pidfile",
                        path.display()
                    ),
                )
            })?;
        Ok(PidFile {
            path: path.to_path_buf(),
            pid,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        // Another instance may have taken the path over; leave its file alone.
        let ours = std::fs::read_to_string(&self.path)
            .map(|s| s.trim() == self.pid.to_string())
            .unwrap_or(false);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Which secrets the raw configuration holds in the file itself (not in a
/// `*_file` or the environment), by key.
pub fn secrets_in(raw: &RawConfig) -> Vec<String> {
    let mut keys = Vec::new();
    for (i, t) in raw.targets.iter().enumerate() {
        if t.password.is_some() {
            keys.push(format!("targets[{i}].password"));
        }
        if crate::config::redact_uri(&t.uri) != t.uri {
            keys.push(format!("targets[{i}].uri"));
        }
    }
    let many = raw.upload.many || raw.upload.entries.len() > 1;
    for (i, u) in raw.upload.entries.iter().enumerate() {
        let prefix = if many {
            format!("upload[{i}]")
        } else {
            "upload".into()
        };
        for (name, set) in [
            ("api_key", u.api_key.is_some()),
            ("bearer_token", u.bearer_token.is_some()),
            ("password", u.password.is_some()),
            (
                "proxy",
                u.proxy
                    .as_deref()
                    .is_some_and(|p| crate::config::redact_uri(p) != p),
            ),
            ("url", crate::config::redact_uri(&u.url) != u.url),
        ] {
            if set {
                keys.push(format!("{prefix}.{name}"));
            }
        }
    }
    keys
}

/// A warning for a configuration file that other users may read while it
/// holds a secret; `None` when the file is private enough or holds none.
/// (Secrets that came from the environment are counted too: the check is
/// deliberately cautious, the fix is the same.)
pub fn world_readable_secret_warning(path: &Path, raw: &RawConfig) -> Option<String> {
    let mode = std::fs::metadata(path).ok()?.mode();
    if mode & 0o004 == 0 {
        return None;
    }
    let keys = secrets_in(raw);
    if keys.is_empty() {
        return None;
    }
    Some(format!(
        "The configuration file {} is readable by every user (mode {:04o}) and holds {}; run chmod 600 (or chmod 640 with group mongomon) on it, or move the secret to password_file/api_key_file.",
        path.display(),
        mode & 0o7777,
        keys.join(", ")
    ))
}

/// A file or directory `run` refuses to use as it is: anyone who may write
/// it controls the agent. The model is sshd's `StrictModes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionProblem {
    /// The setting that names it: `--config` or `agent.spool_dir`.
    pub key: &'static str,
    pub path: PathBuf,
    /// One sentence: the path, its mode or owner, why, and the command that
    /// fixes it. Never anything read from the file.
    pub message: String,
}

/// Who besides the owner may write, from the mode's write bits.
fn writable_by(mode: u32) -> Option<&'static str> {
    match (mode & 0o020 != 0, mode & 0o002 != 0) {
        (true, true) => Some("its group and every user"),
        (false, true) => Some("every user"),
        (true, false) => Some("its group"),
        (false, false) => None,
    }
}

/// The configuration file must be writable by its owner only: whoever can
/// write it can point the agent at any host or receiver and have it send
/// the secrets it holds (or those of the environment) there.
pub fn config_file_problem(path: &Path) -> Option<PermissionProblem> {
    let mode = std::fs::metadata(path).ok()?.mode();
    let who = writable_by(mode)?;
    let p = path.display();
    Some(PermissionProblem {
        key: "--config",
        path: path.to_path_buf(),
        message: format!(
            "The configuration file {p} is writable by {who} (mode {:04o}), who could point the agent anywhere and collect its secrets; \
             the agent will not start with it: run chmod 0640 {p} (owner root, group mongomon) or chmod 0600 {p}.",
            mode & 0o7777
        ),
    })
}

/// `agent.spool_dir` must be writable by the agent's user only, and belong
/// to it (or to root): whoever controls it can remove queued batches or
/// plant ones that the agent sends with its credentials. `owner` is the user
/// the agent runs as; `None` skips the owner check. A missing directory is
/// fine: the spool creates it, mode 0700.
pub fn spool_dir_problem(dir: &Path, owner: Option<u32>) -> Option<PermissionProblem> {
    let meta = std::fs::metadata(dir).ok().filter(|m| m.is_dir())?;
    let d = dir.display();
    let problem = |message| PermissionProblem {
        key: "agent.spool_dir",
        path: dir.to_path_buf(),
        message,
    };
    if let Some(who) = writable_by(meta.mode()) {
        return Some(problem(format!(
            "agent.spool_dir {d} is writable by {who} (mode {:04o}), who could remove or plant the batches the agent sends; \
             the agent will not start with it: run chmod 0700 {d}.",
            meta.mode() & 0o7777
        )));
    }
    let me = owner?;
    if meta.uid() != me && meta.uid() != 0 {
        let name = |uid| user_name(uid).unwrap_or_else(|| uid.to_string());
        return Some(problem(format!(
            "agent.spool_dir {d} belongs to user {} (uid {}), not to {} (uid {me}) that the agent runs as, and that user controls what the agent sends; \
             the agent will not start with it: run chown -R {} {d} (or run the agent as its owner).",
            name(meta.uid()),
            meta.uid(),
            name(me),
            name(me),
        )));
    }
    None
}

/// Every permission problem of the configuration file and the spool
/// directory (`raw.agent.spool_dir`; `""` means no spool), for the agent
/// running as `owner` (`None`: the owner is not checked).
pub fn permission_problems(
    config: &Path,
    raw: &RawConfig,
    owner: Option<u32>,
) -> Vec<PermissionProblem> {
    let spool = raw.agent.spool_dir.trim();
    let mut out: Vec<PermissionProblem> = config_file_problem(config).into_iter().collect();
    if !spool.is_empty() {
        out.extend(spool_dir_problem(Path::new(spool), owner));
    }
    out
}

/// Why the agent running as `owner` refuses the configuration file and
/// spool of `raw`: every problem of [`permission_problems`] in one message
/// (an operator fixes them in one go), or `None` when there is none. Both
/// a start and a SIGHUP reload ask this.
pub fn permission_refusal(config: &Path, raw: &RawConfig, owner: Option<u32>) -> Option<String> {
    let problems = permission_problems(config, raw, owner);
    let all: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
    (!all.is_empty()).then(|| all.join(" "))
}

/// The login name of `uid`, if the user database knows it.
fn user_name(uid: u32) -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 4096];
    // SAFETY: an all-zero passwd is a valid value (null pointers, zero ids);
    // getpwuid_r only fills it with pointers into `buf`, which outlives
    // every use of them below.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is to a live local of the stated size.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut found) };
    if rc != 0 || found.is_null() || pwd.pw_name.is_null() {
        return None;
    }
    // SAFETY: pw_name points to a NUL-terminated string inside `buf`.
    let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
    Some(name.to_string_lossy().into_owned())
}

/// The open-file limit after raising the soft limit to the hard one, as
/// `(soft before, soft now)`. Every monitored host costs sockets, and the
/// usual soft limit (1,024) is reached at a few hundred hosts while the hard
/// limit is often far higher; an unprivileged process may raise its own
/// soft limit up to the hard one.
pub fn raise_nofile_limit() -> Option<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return None;
        }
        let before = lim.rlim_cur;
        if lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Some((before, before));
            }
        }
        Some((before, lim.rlim_cur))
    }
}

/// The current soft open-file limit (`run` raised it at start).
pub fn nofile_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct we pass.
    (unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0).then_some(lim.rlim_cur)
}

/// Descriptors the agent needs besides the hosts' sockets: the receivers'
/// connections, spool and log files, the runtime's own.
pub const NOFILE_RESERVE: u64 = 64;

/// Sockets one monitored host holds: its one connection (`mongo::conn`).
pub const SOCKETS_PER_HOST: u64 = 1;

/// Whether `hosts` hosts fit in the open-file limit `limit`.
pub fn hosts_fit(hosts: usize, limit: u64) -> bool {
    (hosts as u64).saturating_mul(SOCKETS_PER_HOST) + NOFILE_RESERVE <= limit
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_refused_unless_allowed() {
        let msg = root_refusal(0, false).expect("refused");
        assert!(
            msg.contains("useradd") && msg.contains("--allow-root"),
            "{msg}"
        );
        assert!(msg.ends_with('.'));
        assert_eq!(root_refusal(0, true), None);
        assert_eq!(root_refusal(1000, false), None);
    }

    #[test]
    fn pid_file_names_us_and_is_removed_only_if_ours() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.pid");
        let f = PidFile::create(&p).unwrap();
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            format!("{}\n", std::process::id())
        );
        drop(f);
        assert!(!p.exists());
        let f = PidFile::create(&p).unwrap();
        std::fs::write(&p, "1\n").unwrap();
        drop(f);
        assert!(p.exists(), "another process's pid file is left alone");
        let err = PidFile::create(&dir.path().join("no/such/dir.pid")).unwrap_err();
        assert!(err.to_string().contains("--pidfile"), "{err}");
    }

    #[test]
    fn group_or_world_writable_config_is_a_problem_with_the_fix() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.toml");
        std::fs::write(&p, "").unwrap();
        for ok in [0o600, 0o640, 0o644, 0o400] {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(ok)).unwrap();
            assert_eq!(config_file_problem(&p), None, "{ok:o}");
        }
        for (bad, who) in [
            (0o666, "its group and every user"),
            (0o646, "every user"),
            (0o660, "its group"),
        ] {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(bad)).unwrap();
            let m = config_file_problem(&p).expect("a problem").message;
            assert!(
                m.contains(&p.display().to_string())
                    && m.contains(&format!("writable by {who} (mode {bad:04o})"))
                    && m.contains(&format!("chmod 0640 {}", p.display())),
                "{m}"
            );
        }
    }

    #[test]
    fn spool_dir_must_be_private_and_the_agents() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("spool");
        assert_eq!(spool_dir_problem(&d, Some(euid())), None, "missing is fine");
        std::fs::create_dir(&d).unwrap();
        for ok in [0o700, 0o750, 0o755] {
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(ok)).unwrap();
            assert_eq!(spool_dir_problem(&d, Some(euid())), None, "{ok:o}");
        }
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let m = spool_dir_problem(&d, Some(euid()))
            .expect("world-writable")
            .message;
        assert!(
            m.contains("agent.spool_dir")
                && m.contains("(mode 1777)")
                && m.contains(&format!("chmod 0700 {}", d.display())),
            "{m}"
        );
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
        // Owned by us (or by root, when the tests run as root): not ours to
        // run as someone else, so pretend to be another uid.
        let other = euid().wrapping_add(4242);
        let mine = std::fs::metadata(&d).unwrap().uid();
        if mine != 0 {
            let m = spool_dir_problem(&d, Some(other))
                .expect("not the agent's")
                .message;
            assert!(
                m.contains("chown -R") && m.contains(&format!("uid {mine}")),
                "{m}"
            );
        } else {
            assert_eq!(spool_dir_problem(&d, Some(other)), None, "root's is fine");
        }
        assert_eq!(spool_dir_problem(&d, None), None);
    }

    #[test]
    fn world_readable_secret_is_warned_about() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.toml");
        std::fs::write(&p, "").unwrap();
        let mut raw = RawConfig::default();
        raw.upload.entries[0].api_key = Some("k".into());
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let w = world_readable_secret_warning(&p, &raw).expect("warned");
        assert!(
            w.contains("upload.api_key") && w.contains("chmod 600"),
            "{w}"
        );
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert_eq!(world_readable_secret_warning(&p, &raw), None);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(
            world_readable_secret_warning(&p, &RawConfig::default()),
            None
        );
    }
}
