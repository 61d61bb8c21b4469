//! The agent's connection over TLS against real SecantusDB servers: the
//! server's certificate checked against `tlsCAFile`, a wrong CA, an expired
//! certificate and a certificate for another name refused as `tls` (unless
//! the URI relaxes exactly that), and MONGODB-X509 and SCRAM logins over
//! TLS with a client certificate on a server started with `--auth` and
//! `--tls-require-client-cert`.

use std::path::Path;
use std::time::Duration;

use mongomon::mongo;

mod common;
use common::servers::TestCa;
use common::Secantus;

fn runtime() -> actix_rt::SystemRunner {
    actix_rt::System::new()
}

fn tls_args<'a>(cert: &'a Path, key: &'a Path, ca: &'a Path) -> Vec<&'a str> {
    vec![
        "--tls-cert-file",
        cert.to_str().unwrap(),
        "--tls-key-file",
        key.to_str().unwrap(),
        "--tls-ca-file",
        ca.to_str().unwrap(),
    ]
}

fn settings(uri: &str) -> mongomon::config::Settings {
    let config = format!(
        "[agent]\ncommand_timeout_ms = 5000\nconnect_timeout_ms = 3000\nspool_dir = \"\"\n\
         [[targets]]\nname = \"t\"\nuri = \"{uri}\"\n\
         [upload]\nurl = \"http://127.0.0.1:9/\"\n"
    );
    let raw = mongomon::config::load_str(&config, &serde_json::json!({})).unwrap();
    mongomon::config::validate(&raw, None).unwrap()
}

/// serverStatus through a fresh connection built from `uri`: the version,
/// or the failure's kind and message.
async fn server_status(uri: &str, host: &str) -> Result<String, (&'static str, String)> {
    let s = settings(uri);
    let base = mongo::target_options(&s.targets[0])
        .await
        .map_err(|f| (f.kind, f.message))?;
    let client = mongo::host_client(&base, host, &s.agent).map_err(|f| (f.kind, f.message))?;
    let o = mongo::run(&client, "serverStatus", None, Duration::from_secs(8)).await;
    match o.result {
        Ok(d) => Ok(d.get_str("version").unwrap_or("?").to_string()),
        Err(f) => Err((f.kind, f.message)),
    }
}

fn expect_tls(what: &str, r: Result<String, (&'static str, String)>, text: &str) {
    match r {
        Ok(v) => panic!("{what}: connected (version {v}) where TLS must refuse"),
        Err((kind, message)) => {
            assert_eq!(kind, "tls", "{what}: {message}");
            assert!(
                message.to_ascii_lowercase().contains(text),
                "{what}: {message}"
            );
        }
    }
}

#[test]
fn the_server_certificate_is_checked_and_a_wrong_ca_expired_or_misnamed_one_is_tls() {
    let ca = TestCa::new("mongomon-test-ca");
    let other = TestCa::new("some-other-ca");
    let (cert, key) = ca.server();
    let good = Secantus::start(&[&["--standalone"][..], &tls_args(&cert, &key, &ca.ca())].concat());
    let (old_cert, old_key) = ca.server_for("expired", "DNS:localhost,IP:127.0.0.1", "0");
    let expired = Secantus::start(
        &[
            &["--standalone"][..],
            &tls_args(&old_cert, &old_key, &ca.ca()),
        ]
        .concat(),
    );
    let (far_cert, far_key) = ca.server_for("elsewhere", "DNS:db.elsewhere.invalid", "2");
    let misnamed = Secantus::start(
        &[
            &["--standalone"][..],
            &tls_args(&far_cert, &far_key, &ca.ca()),
        ]
        .concat(),
    );
    // The expired certificate's last valid second must be over.
    std::thread::sleep(Duration::from_millis(1100));
    let ca_file = ca.ca().display().to_string();
    let other_ca = other.ca().display().to_string();
    runtime().block_on(async {
        let uri = |s: &Secantus, ca: &str, extra: &str| {
            format!("mongodb://{}/?tls=true&tlsCAFile={ca}{extra}", s.addr())
        };
        let v = server_status(&uri(&good, &ca_file, ""), &good.addr()).await;
        assert!(v.is_ok(), "TLS with the right CA: {v:?}");

        expect_tls(
            "another CA",
            server_status(&uri(&good, &other_ca, ""), &good.addr()).await,
            "issuer",
        );
        expect_tls(
            "expired",
            server_status(&uri(&expired, &ca_file, ""), &expired.addr()).await,
            "expired",
        );
        expect_tls(
            "another name",
            server_status(&uri(&misnamed, &ca_file, ""), &misnamed.addr()).await,
            "name",
        );
        // Relaxed exactly as far as the URI says, and no further.
        let v = server_status(
            &uri(&misnamed, &ca_file, "&tlsAllowInvalidHostnames=true"),
            &misnamed.addr(),
        )
        .await;
        assert!(v.is_ok(), "tlsAllowInvalidHostnames: {v:?}");
        expect_tls(
            "tlsAllowInvalidHostnames with an expired certificate",
            server_status(
                &uri(&expired, &ca_file, "&tlsAllowInvalidHostnames=true"),
                &expired.addr(),
            )
            .await,
            "expired",
        );
        let v = server_status(&uri(&good, &other_ca, "&tlsInsecure=true"), &good.addr()).await;
        assert!(v.is_ok(), "tlsInsecure: {v:?}");

        // The weakening is on record, for the warning at start.
        let s = settings(&uri(&good, &other_ca, "&tlsInsecure=true"));
        let base = mongo::target_options(&s.targets[0]).await.unwrap();
        assert!(base.conn.tls.as_ref().unwrap().weakened.is_some());
        let s = settings(&uri(&good, &ca_file, ""));
        let base = mongo::target_options(&s.targets[0]).await.unwrap();
        assert!(base.conn.tls.as_ref().unwrap().weakened.is_none());
    });
}

#[test]
fn x509_and_scram_logins_over_tls_on_a_server_with_auth_and_client_certificates() {
    let ca = TestCa::new("mongomon-x509-ca");
    let (cert, key) = ca.server();
    let bundle = ca.client_bundle();
    let store = tempfile::tempdir().unwrap();
    let storage = store.path().to_str().unwrap();
    let ca_pem = ca.ca();
    let tls = tls_args(&cert, &key, &ca_pem);
    let ca_file = ca.ca().display().to_string();
    let client_file = bundle.display().to_string();

    // Users first, without auth (over TLS with the client certificate, as
    // the server will demand it later anyway).
    let open = Secantus::start_at(storage, &[&["--standalone"][..], &tls].concat());
    let admin_uri = format!(
        "mongodb://{}/?directConnection=true&tls=true&tlsCAFile={ca_file}&tlsCertificateKeyFile={client_file}",
        open.addr()
    );
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let c = mongodb::Client::with_uri_str(&admin_uri).await.unwrap();
            c.database("admin")
                .run_command(bson::doc! {
                    "createUser": "mon", "pwd": "tls-scram-pw-31x",
                    "roles": [{"role": "clusterMonitor", "db": "admin"}],
                })
                .await
                .expect("SCRAM user");
            c.database("$external")
                .run_command(bson::doc! {
                    "createUser": "CN=mongomon-agent",
                    "roles": [{"role": "clusterMonitor", "db": "admin"}],
                    "mechanisms": ["MONGODB-X509"],
                })
                .await
                .expect("x509 user");
        });
    open.stop_gracefully();
    let server = Secantus::start_at(
        storage,
        &[
            &["--standalone", "--auth", "--tls-require-client-cert"][..],
            &tls,
        ]
        .concat(),
    );
    let addr = server.addr();
    runtime().block_on(async {
        let with_cert = format!("tls=true&tlsCAFile={ca_file}&tlsCertificateKeyFile={client_file}");
        let v = server_status(
            &format!("mongodb://{addr}/?{with_cert}&authMechanism=MONGODB-X509"),
            &addr,
        )
        .await;
        assert!(v.is_ok(), "MONGODB-X509: {v:?}");
        let v = server_status(
            &format!("mongodb://mon:tls-scram-pw-31x@{addr}/?{with_cert}&authSource=admin"),
            &addr,
        )
        .await;
        assert!(v.is_ok(), "SCRAM over TLS: {v:?}");

        let (kind, message) = server_status(
            &format!("mongodb://mon:wrong-pw-77@{addr}/?{with_cert}&authSource=admin"),
            &addr,
        )
        .await
        .unwrap_err();
        assert_eq!(kind, "auth", "{message}");
        assert!(!message.contains("wrong-pw-77"), "{message}");

        // Logged out: the server refuses serverStatus itself.
        let (kind, message) = server_status(&format!("mongodb://{addr}/?{with_cert}"), &addr)
            .await
            .unwrap_err();
        assert_eq!(kind, "auth", "{message}");

        // No client certificate: the server ends the TLS session.
        let (kind, message) = server_status(
            &format!("mongodb://{addr}/?tls=true&tlsCAFile={ca_file}&authMechanism=MONGODB-X509"),
            &addr,
        )
        .await
        .unwrap_err();
        assert_eq!(kind, "tls", "{message}");
    });
}
