//! What an operator sees when the configuration is wrong (issue 11): one
//! line that says what is wrong, where and what to do, never a quote of the
//! configuration text, never a secret, and no value so large that the agent
//! later panics on it.

mod common;

use common::mongomon;

const REST: &str =
    "[[targets]]\nuri = \"mongodb://127.0.0.1:1\"\n[upload]\nurl = \"http://127.0.0.1:2/write\"\n";

fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> String {
    let p = dir.path().join(name);
    std::fs::write(&p, bytes).unwrap();
    p.display().to_string()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// `config` and `run` on the same file: exit 2, one line on stderr.
fn refused(path: &str, env: &[(&str, &str)]) -> String {
    let mut last = String::new();
    for cmd in ["config", "run"] {
        let o = mongomon(&[cmd, "-c", path], env);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{cmd}: {err}");
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{cmd}: one line: {err:?}"
        );
        assert!(
            !o.stderr.iter().any(|b| *b < 0x20 && *b != b'\n'),
            "{cmd}: control bytes on stderr: {err:?}"
        );
        last = err;
    }
    last
}

#[test]
fn a_syntax_error_gives_line_column_and_key_but_never_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[agent]\ninterval_secs = 10\n{REST}api_key = \"SYNTAX-SECRET-7f3a\n[spool]\nmax_bytes = 1000000\n"
    );
    let path = write(&dir, "m.toml", text.as_bytes());
    let err = refused(&path, &[]);
    assert!(!err.contains("SYNTAX-SECRET"), "{err}");
    assert!(!err.contains("api_key = "), "no quote of the line: {err}");
    assert!(err.contains(&path), "names the file: {err}");
    assert!(err.contains("line 7"), "names the line: {err}");
    assert!(err.contains("column"), "names the column: {err}");
    assert!(err.contains("upload.api_key"), "names the key: {err}");
}

#[test]
fn a_wrong_type_names_the_kind_of_value_not_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "m.toml",
        format!("{REST}gzip = \"TYPE-SECRET-91b2\"\n").as_bytes(),
    );
    let err = refused(&path, &[]);
    assert!(!err.contains("TYPE-SECRET"), "{err}");
    assert!(
        err.contains("upload.gzip") && err.contains("a string"),
        "{err}"
    );
}

#[test]
fn malformed_urls_with_userinfo_are_redacted_in_errors_and_in_config_output() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        // A raw '/' in the password: the driver reads the rest as a host.
        (
            "[[targets]]\nuri = \"mongodb://user:pa/SLASH-SECRET-44@127.0.0.1:1\"\n[upload]\nurl = \"http://127.0.0.1:2/write\"\n",
            "SLASH-SECRET-44",
            "targets[0].uri",
        ),
        (
            "[[targets]]\nuri = \"mongodb://user:pa?QMARK-SECRET-45@127.0.0.1:1\"\n[upload]\nurl = \"http://127.0.0.1:2/write\"\n",
            "QMARK-SECRET-45",
            "targets[0].uri",
        ),
        // A proxy without its scheme.
        (
            "[[targets]]\nuri = \"mongodb://127.0.0.1:1\"\n[upload]\nurl = \"http://127.0.0.1:2/write\"\nproxy = \"pxuser:PROXY-SECRET-46@127.0.0.1:3128\"\n",
            "PROXY-SECRET-46",
            "upload.proxy",
        ),
        // A receiver URL with userinfo and a port out of range.
        (
            "[[targets]]\nuri = \"mongodb://127.0.0.1:1\"\n[upload]\nurl = \"http://u:URL-SECRET-47@127.0.0.1:99999/write\"\n",
            "URL-SECRET-47",
            "upload.url",
        ),
    ];
    for (text, secret, key) in cases {
        let path = write(&dir, "m.toml", text.as_bytes());
        let err = refused(&path, &[]);
        assert!(!err.contains(secret), "{err}");
        assert!(err.contains(key), "{err}");
        let o = mongomon(&["config", "-c", &path], &[]);
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(!out.contains(secret), "config output: {out}");
        assert!(out.contains("<redacted>"), "config output: {out}");
    }
    // The same proxy shape from the environment.
    let path = write(
        &dir,
        "m.toml",
        b"[[targets]]\nuri = \"mongodb://127.0.0.1:1\"\n[upload]\nurl = \"http://127.0.0.1:2/write\"\n",
    );
    let err = refused(
        &path,
        &[("http_proxy", "pxuser:ENV-PROXY-SECRET-48@127.0.0.1:3128")],
    );
    assert!(!err.contains("ENV-PROXY-SECRET-48"), "{err}");
    assert!(err.contains("http_proxy"), "{err}");
}

#[test]
fn ports_outside_the_valid_range_are_rejected_in_every_url() {
    let dir = tempfile::tempdir().unwrap();
    for port in ["99999", "65536", "0"] {
        let path = write(
            &dir,
            "m.toml",
            format!("[[targets]]\nuri = \"mongodb://127.0.0.1:1\"\n[upload]\nurl = \"http://127.0.0.1:{port}/write\"\n").as_bytes(),
        );
        let err = refused(&path, &[]);
        assert!(
            err.contains("upload.url") && err.contains("1-65535"),
            "{port}: {err}"
        );
        let path = write(
            &dir,
            "m.toml",
            format!("{REST}proxy = \"http://127.0.0.1:{port}\"\n").as_bytes(),
        );
        let err = refused(&path, &[]);
        assert!(
            err.contains("upload.proxy") && err.contains("1-65535"),
            "{port}: {err}"
        );
    }
}

#[test]
fn every_duration_and_size_key_has_an_upper_bound() {
    let dir = tempfile::tempdir().unwrap();
    let huge = i64::MAX;
    for (section, key) in [
        ("agent", "interval_secs"),
        ("agent", "command_timeout_ms"),
        ("agent", "connect_timeout_ms"),
        ("agent", "info_interval_secs"),
        ("agent", "shutdown_timeout_secs"),
        ("agent", "dbstats_interval_secs"),
        ("agent", "dbstats_max_databases"),
        ("agent", "dbstats_max_secs"),
        ("discovery", "interval_secs"),
        ("discovery", "removal_grace_secs"),
        ("discovery", "mongos_ping_window_secs"),
        ("spool", "max_bytes"),
        ("spool", "segment_bytes"),
        ("spool", "fsync_interval_ms"),
        ("spool", "dead_letter_max_bytes"),
        ("upload", "timeout_secs"),
        ("upload", "max_batch_bytes"),
        ("upload", "max_batch_age_ms"),
        ("upload", "max_queue_bytes"),
        ("upload", "retry_initial_ms"),
        ("upload", "retry_max_ms"),
        ("upload", "max_retries"),
        ("upload", "max_in_flight"),
        ("http", "max_concurrent_scrapes"),
        ("http", "max_request_bytes"),
    ] {
        let var = format!(
            "MONGOMON_{}__{}",
            section.to_uppercase(),
            key.to_uppercase()
        );
        let path = write(&dir, "m.toml", REST.as_bytes());
        let err = refused(&path, &[(&var, &huge.to_string())]);
        assert!(
            err.contains(&format!("{section}.{key} must be between"))
                && err.contains(&format!("(found {huge})")),
            "{section}.{key}: {err}"
        );
    }
}

#[test]
fn unreadable_files_say_what_is_wrong_once() {
    let dir = tempfile::tempdir().unwrap();
    // Not UTF-8: where the first bad byte is.
    let mut bytes = b"[agent]\ninterval_secs = 10\n# caf".to_vec();
    bytes.extend_from_slice(&[0xe9, b'\n']);
    let path = write(&dir, "latin1.toml", &bytes);
    let err = refused(&path, &[]);
    assert!(
        err.contains("not UTF-8") && err.contains("line 3, column 6"),
        "{err}"
    );
    assert!(!err.contains("permissions"), "no wrong advice: {err}");
    assert_eq!(
        err.matches("UTF-8").count(),
        2,
        "the cause once (and the fix): {err}"
    );

    // NUL bytes: said, not written to the terminal.
    let path = write(&dir, "nul.toml", &[0u8; 64]);
    let err = refused(&path, &[]);
    assert!(err.contains("NUL byte at line 1, column 1"), "{err}");

    // A directory: the OS error once, and what to pass instead.
    let sub = dir.path().join("conf.d");
    std::fs::create_dir(&sub).unwrap();
    let err = refused(sub.to_str().unwrap(), &[]);
    assert!(err.contains("is a directory"), "{err}");
    assert_eq!(err.matches("directory").count(), 1, "{err}");

    // A symlink loop is not "not found".
    let a = dir.path().join("loop-a.toml");
    let b = dir.path().join("loop-b.toml");
    std::os::unix::fs::symlink(&b, &a).unwrap();
    std::os::unix::fs::symlink(&a, &b).unwrap();
    let err = refused(a.to_str().unwrap(), &[]);
    assert!(err.contains("loops"), "{err}");
    assert!(!err.contains("not found"), "{err}");

    // A dangling link names the link.
    let c = dir.path().join("dangling.toml");
    std::os::unix::fs::symlink(dir.path().join("gone.toml"), &c).unwrap();
    let err = refused(c.to_str().unwrap(), &[]);
    assert!(
        err.contains("symbolic link to a file that does not exist"),
        "{err}"
    );
}

#[test]
fn environment_values_are_explained_by_their_variable() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "m.toml", REST.as_bytes());
    let err = refused(&path, &[("MONGOMON_AGENT__INTERVAL_SECS", "")]);
    assert!(
        err.contains("agent.interval_secs is empty")
            && err.contains("MONGOMON_AGENT__INTERVAL_SECS"),
        "{err}"
    );
    assert!(!err.contains("found string"), "{err}");

    let path = write(
        &dir,
        "m.toml",
        b"[[targets]]\nuri = \"mongodb://u@127.0.0.1:1\"\npassword_env = \"MM_TEST_PW\"\n[upload]\nurl = \"http://127.0.0.1:2/write\"\n",
    );
    // A value that is not UTF-8 is not "not set".
    let o = {
        use std::os::unix::ffi::OsStrExt;
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_mongomon"));
        cmd.args(["config", "-c", &path])
            .env_remove("MONGOMON_CONFIG")
            .env(
                "MM_TEST_PW",
                std::ffi::OsStr::from_bytes(&[0xff, 0xfe, b'x']),
            );
        cmd.output().unwrap()
    };
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("targets[0].password_env") && err.contains("not UTF-8"),
        "{err}"
    );
    assert!(!err.contains("not set"), "{err}");
    let err = refused(&path, &[("MM_TEST_PW", "")]);
    assert!(err.contains("set but empty"), "{err}");
    let err = refused(&path, &[]);
    assert!(err.contains("MM_TEST_PW, which is not set"), "{err}");
}

#[test]
fn an_unreadable_file_says_who_cannot_read_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "secret.toml", REST.as_bytes());
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).unwrap();
    // Root reads any file, so as root the agent runs as `nobody`, as the
    // service would run as its own user.
    let o = if common::is_root() {
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::process::Command::new("runuser")
            .args([
                "-u",
                "nobody",
                "--",
                env!("CARGO_BIN_EXE_mongomon"),
                "config",
                "-c",
                &path,
            ])
            .env_remove("MONGOMON_CONFIG")
            .output()
            .expect("runuser (util-linux)")
    } else {
        mongomon(&["config", "-c", &path], &[])
    };
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("cannot be read by this user"), "{err}");
    assert_eq!(
        err.matches("ermission denied").count(),
        1,
        "the OS error once: {err}"
    );
    assert!(err.contains("chmod"), "says what to do: {err}");
}

#[test]
fn an_authentication_mechanism_the_agent_cannot_use_names_the_target_and_mechanism() {
    let dir = tempfile::tempdir().unwrap();
    for mech in ["GSSAPI", "MONGODB-AWS", "MONGODB-OIDC"] {
        let path = write(
            &dir,
            "m.toml",
            format!(
                "[[targets]]\nname = \"billing\"\nuri = \"mongodb://svc%40EXAMPLE.COM:MECH-SECRET-9@127.0.0.1:1/?authMechanism={mech}\"\n\
                 [upload]\nurl = \"http://127.0.0.1:2/write\"\n"
            )
            .as_bytes(),
        );
        let err = refused(&path, &[]);
        assert!(
            err.contains("targets[0].uri") && err.contains("billing"),
            "{err}"
        );
        assert!(err.contains(&format!("authMechanism={mech}")), "{err}");
        assert!(err.contains("SCRAM-SHA-256"), "says what works: {err}");
        assert!(!err.contains("MECH-SECRET-9"), "{err}");
    }
}
