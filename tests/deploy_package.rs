//! Packaging: the .deb built by cargo-deb holds the binary, the unit, the
//! init script, the logrotate file and the examples; its maintainer scripts
//! create the user and directories and enable the service without starting
//! it unconfigured; it installs, removes and purges cleanly with dpkg.
//!
//! Installs a package on this machine, so it needs root (CI runs as root on
//! a throwaway machine) and fails, with the reason, otherwise.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Output};

fn run(cmd: &mut Command) -> Output {
    let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        o.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

#[test]
fn deb_is_built_checked_installed_and_removed() {
    assert!(
        common::is_root(),
        "this test installs the .deb with dpkg -i and needs root (CI runs it as root)"
    );
    assert!(
        !Path::new("/etc/mongomon/mongomon.toml").exists(),
        "/etc/mongomon/mongomon.toml exists: this machine runs a configured mongomon, which the package test would restart"
    );
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let have = Command::new(&cargo).args(["deb", "--version"]).output();
    assert!(
        have.map(|o| o.status.success()).unwrap_or(false),
        "cargo-deb is missing: run scripts/test-deps.sh (cargo install cargo-deb --locked)"
    );
    let out = tempfile::tempdir().unwrap();
    // The binary the tests already built (debug, stripped by cargo-deb):
    // building a release binary here would take minutes.
    run(Command::new(&cargo)
        .args([
            "deb",
            "--no-build",
            "--profile",
            "dev",
            "--fast",
            "-q",
            "-o",
        ])
        .arg(out.path())
        .current_dir(env!("CARGO_MANIFEST_DIR")));
    let deb = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .expect("a .deb was written");

    let contents = stdout(&run(Command::new("dpkg-deb").arg("-c").arg(&deb)));
    for (path, mode) in [
        ("./usr/bin/mongomon", "-rwxr-xr-x"),
        ("./lib/systemd/system/mongomon.service", "-rw-r--r--"),
        ("./etc/init.d/mongomon", "-rwxr-xr-x"),
        ("./etc/logrotate.d/mongomon", "-rw-r--r--"),
        ("./etc/default/mongomon", "-rw-r-----"),
        (
            "./usr/share/doc/mongomon/examples/mongomon.example.toml",
            "-rw-r--r--",
        ),
        (
            "./usr/share/doc/mongomon/examples/mongomon.toml.template",
            "-rw-r--r--",
        ),
    ] {
        assert!(
            contents
                .lines()
                .any(|l| l.starts_with(mode) && l.ends_with(path)),
            "{path} ({mode}) in:\n{contents}"
        );
    }
    let info = stdout(&run(Command::new("dpkg-deb").arg("-I").arg(&deb)));
    for want in [
        "Package: mongomon",
        "postinst",
        "prerm",
        "postrm",
        "conffiles",
    ] {
        assert!(info.contains(want), "{want} in:\n{info}");
    }
    let control = tempfile::tempdir().unwrap();
    run(Command::new("dpkg-deb")
        .arg("-e")
        .arg(&deb)
        .arg(control.path()));
    let postinst = std::fs::read_to_string(control.path().join("postinst")).unwrap();
    for want in [
        "useradd --system",
        "install -d -o mongomon -g mongomon -m 0750 /var/lib/mongomon /var/lib/mongomon/spool /var/log/mongomon",
        "deb-systemd-helper enable mongomon.service",
        "update-rc.d mongomon defaults",
        "if [ -f /etc/mongomon/mongomon.toml ]; then",
    ] {
        assert!(postinst.contains(want), "postinst lacks {want:?}");
    }
    let conffiles = std::fs::read_to_string(control.path().join("conffiles")).unwrap();
    assert!(conffiles.contains("/etc/default/mongomon"), "{conffiles}");

    // Install: the user, directories and links are there; nothing runs.
    let o = run(Command::new("dpkg").arg("-i").arg(&deb));
    let said = format!("{}{}", stdout(&o), String::from_utf8_lossy(&o.stderr));
    assert!(said.contains("enabled but not started"), "{said}");
    let v = run(Command::new("/usr/bin/mongomon").arg("--version"));
    assert!(stdout(&v).starts_with("mongomon "));
    let uid = common::deploy::uid_of("mongomon").expect("the package created the mongomon user");
    for dir in ["/var/log/mongomon", "/var/lib/mongomon/spool"] {
        let m = std::fs::metadata(dir).unwrap_or_else(|e| panic!("{dir}: {e}"));
        assert_eq!(m.uid(), uid, "{dir} belongs to mongomon");
        assert_eq!(m.mode() & 0o777, 0o750, "{dir}");
    }
    let etc = std::fs::metadata("/etc/mongomon").unwrap();
    assert_eq!((etc.uid(), etc.mode() & 0o777), (0, 0o750));
    let rc2: Vec<String> = std::fs::read_dir("/etc/rc2.d")
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        rc2.iter()
            .any(|n| n.starts_with('S') && n.ends_with("mongomon")),
        "enabled for SysV runlevel 2: {rc2:?}"
    );
    if Path::new("/usr/bin/deb-systemd-helper").exists() {
        assert!(
            Path::new("/etc/systemd/system/multi-user.target.wants/mongomon.service").exists(),
            "enabled for systemd"
        );
    }
    assert!(
        !Path::new("/run/mongomon/mongomon.pid").exists(),
        "not started without a configuration"
    );
    let st = Command::new("/etc/init.d/mongomon")
        .arg("status")
        .output()
        .unwrap();
    assert_eq!(st.status.code(), Some(3), "installed, not running");

    // Remove: the program goes, configuration stays; purge: everything.
    run(Command::new("dpkg").args(["-r", "mongomon"]));
    assert!(!Path::new("/usr/bin/mongomon").exists());
    assert!(!Path::new("/lib/systemd/system/mongomon.service").exists());
    assert!(
        Path::new("/etc/init.d/mongomon").exists(),
        "conffiles stay until purge"
    );
    run(Command::new("dpkg").args(["-P", "mongomon"]));
    for gone in [
        "/etc/init.d/mongomon",
        "/etc/default/mongomon",
        "/etc/logrotate.d/mongomon",
        "/var/log/mongomon",
        "/var/lib/mongomon",
        "/etc/systemd/system/multi-user.target.wants/mongomon.service",
    ] {
        assert!(!Path::new(gone).exists(), "{gone} left after purge");
    }
    assert!(
        !rc_links_left(),
        "no /etc/rc?.d/*mongomon links after purge"
    );
    let st = Command::new("dpkg")
        .args(["-s", "mongomon"])
        .output()
        .unwrap();
    assert!(!st.status.success(), "the package is gone");
}

fn rc_links_left() -> bool {
    (0..=6).any(|n| {
        std::fs::read_dir(format!("/etc/rc{n}.d"))
            .map(|d| {
                d.filter_map(Result::ok)
                    .any(|e| e.file_name().to_string_lossy().ends_with("mongomon"))
            })
            .unwrap_or(false)
    })
}

#[test]
fn init_writes_a_private_ready_config_and_never_overwrites_silently() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mongomon.toml");
    let out_s = out.to_str().unwrap();
    let args = [
        "init",
        "--upload-url",
        "https://mon.example.net/write",
        "--target",
        "mongodb://db1:27017",
        "--target",
        "mongodb://db2:27017/?replicaSet=rs0",
        "--output",
        out_s,
    ];
    // The key from the environment, so it is not on the command line.
    let o = common::mongomon(&args, &[("MONGOMON_API_KEY", "k-123")]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::metadata(&out).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let text = std::fs::read_to_string(&out).unwrap();
    let raw: toml::Value = toml::from_str(&text).unwrap();
    assert_eq!(raw["upload"]["api_key"].as_str(), Some("k-123"));
    assert_eq!(
        raw["upload"]["url"].as_str(),
        Some("https://mon.example.net/write")
    );
    assert_eq!(raw["targets"].as_array().unwrap().len(), 2);
    // The written file is a valid configuration for the agent.
    let o = common::mongomon(&["config", "-c", out_s], &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    std::fs::write(&out, "# edited by hand\n").unwrap();
    let o = common::mongomon(&args, &[("MONGOMON_API_KEY", "k-456")]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("already exists") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "# edited by hand\n");
    let mut forced = args.to_vec();
    forced.push("--force");
    let o = common::mongomon(&forced, &[("MONGOMON_API_KEY", "k-456")]);
    assert!(o.status.success());
    assert!(std::fs::read_to_string(&out).unwrap().contains("k-456"));
    assert_eq!(
        std::fs::metadata(&out).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // A config readable by everyone that holds a secret is warned about.
    // A spool of its own: the packaged /var/lib/mongomon/spool belongs to
    // the mongomon user while the package test has it installed, and `run`
    // refuses a spool another user owns before it warns.
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o644)).unwrap();
    let spool = dir.path().join("spool");
    let o = common::mongomon_timeout_env(
        &[
            "run",
            "--allow-root",
            "-c",
            out_s,
            "--target",
            "mongodb://127.0.0.1:1/?directConnection=true",
        ],
        &[("MONGOMON_AGENT__SPOOL_DIR", spool.to_str().unwrap())],
        std::time::Duration::from_secs(3),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("is readable by every user") && err.contains("upload.api_key"),
        "{err}"
    );
}
