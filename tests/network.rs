//! What the network can do to mldeploy, through the binary: a server that never answers, a 2xx
//! that is not JSON, a body without end, a body that trickles, Ctrl-C during a request, an exec
//! credential plugin that fails with a token in its output. Each must end in bounded time with
//! a clear error and no credential printed. A raw HTTP/1.1 server on 127.0.0.1 plays the API
//! server so that every byte on the wire is the test's choice.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use predicates::prelude::*;

use crate::mldeploy;

/// How the raw server answers one request (given its request line).
type Answer = dyn Fn(&str, &mut TcpStream) + Send + Sync;

/// Serves every connection on 127.0.0.1 with `answer`, for as long as the test runs.
fn raw_server(answer: Arc<Answer>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let answer = Arc::clone(&answer);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut stream = stream;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    // Skip the headers; these requests carry no body we need.
                    let mut length = 0usize;
                    loop {
                        let mut h = String::new();
                        if reader.read_line(&mut h).unwrap_or(0) == 0 {
                            return;
                        }
                        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                        if h == "\r\n" {
                            break;
                        }
                    }
                    let mut body = vec![0u8; length];
                    let _ = std::io::Read::read_exact(&mut reader, &mut body);
                    answer(line.trim_end(), &mut stream);
                }
            });
        }
    });
    format!("http://{addr}")
}

/// A kubeconfig for `server`, without credentials (so no plain-HTTP warning is expected).
fn kubeconfig(dir: &Path, server: &str, user: &str) -> PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {server}\n\
             users:\n- name: u\n  user:\n{user}\ncontexts:\n- name: c\n  context: {{cluster: c, user: u}}\n\
             current-context: c\n"
        ),
    )
    .expect("write kubeconfig");
    path
}

fn config(dir: &Path) -> PathBuf {
    let path = dir.join("mldeploy.yaml");
    std::fs::write(
        &path,
        "version: 1\nproject: net\nmodels:\n  - {name: m, runtime: deployment, image: example.com/m:1, port: 8080}\n\
         clusters:\n  c: {cloud: onprem, distribution: other}\nenvironments:\n  e: {cluster: c}\n",
    )
    .expect("write config");
    path
}

fn diff(dir: &Path, kubeconfig: &Path, extra: &[&str]) -> assert_cmd::Command {
    let mut cmd = mldeploy();
    cmd.env("MLDEPLOY_RETRY_BASE_MS", "5")
        .arg("-f")
        .arg(config(dir))
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("diff")
        .args(extra);
    cmd
}

fn respond(stream: &mut TcpStream, status: &str, headers: &str, body: &[u8]) {
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(body);
}

#[test]
fn a_server_that_never_answers_meets_the_request_deadline() {
    let server = raw_server(Arc::new(|_, _: &mut TcpStream| {
        std::thread::sleep(Duration::from_secs(120));
    }));
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = kubeconfig(dir.path(), &server, "    {}");
    let started = Instant::now();
    diff(dir.path(), &kc, &["--request-timeout", "2s"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no answer within 2s"));
    // Bounded by the deadline, not by a retry loop of minutes (a generous bound: shared machine).
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn a_2xx_that_is_not_json_is_an_error_not_success() {
    let server = raw_server(Arc::new(|_, s: &mut TcpStream| {
        respond(
            s,
            "200 OK",
            "Content-Type: application/json\r\n",
            b"<html>proxy login</html>",
        );
    }));
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = kubeconfig(dir.path(), &server, "    {}");
    diff(dir.path(), &kc, &[])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("not a Kubernetes object"));
}

#[test]
fn a_body_without_end_is_cut_at_the_cap() {
    // Chunked, no length: 40 MiB of a JSON string, more than the 32 MiB cap.
    let server = raw_server(Arc::new(|_, s: &mut TcpStream| {
        let _ = write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        );
        let chunk = vec![b'a'; 1024 * 1024];
        let _ = write!(s, "1\r\n\"\r\n");
        for _ in 0..40 {
            if write!(s, "{:x}\r\n", chunk.len()).is_err()
                || s.write_all(&chunk).is_err()
                || s.write_all(b"\r\n").is_err()
            {
                return;
            }
        }
        let _ = write!(s, "1\r\n\"\r\n0\r\n\r\n");
    }));
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = kubeconfig(dir.path(), &server, "    {}");
    diff(dir.path(), &kc, &[])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("larger than 32 MiB"));
}

#[test]
fn a_trickling_body_meets_the_request_deadline() {
    let server = raw_server(Arc::new(|_, s: &mut TcpStream| {
        let _ = write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{"
        );
        for _ in 0..120 {
            std::thread::sleep(Duration::from_millis(500));
            if s.write_all(b" ").is_err() {
                return;
            }
        }
    }));
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = kubeconfig(dir.path(), &server, "    {}");
    diff(dir.path(), &kc, &["--request-timeout", "2s"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no answer within 2s"));
}

#[test]
fn ctrl_c_during_a_request_stops_at_once_with_130() {
    let server = raw_server(Arc::new(|_, _: &mut TcpStream| {
        std::thread::sleep(Duration::from_secs(120));
    }));
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = kubeconfig(dir.path(), &server, "    {}");
    let bin = assert_cmd::cargo::cargo_bin("mldeploy");
    let mut child = std::process::Command::new(bin)
        .arg("-f")
        .arg(config(dir.path()))
        .arg("--kubeconfig")
        .arg(&kc)
        .args(["diff", "--request-timeout", "60s"])
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    std::thread::sleep(Duration::from_millis(1500));
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("still running 20s after Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(130));
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
        .expect("read");
    assert!(stderr.contains("interrupted"), "{stderr}");
}

#[test]
fn a_failing_exec_plugin_shows_its_command_and_status_never_its_output_or_env() {
    let server = raw_server(Arc::new(|_, s: &mut TcpStream| {
        respond(s, "500 Internal Server Error", "", b"");
    }));
    let dir = tempfile::tempdir().expect("tempdir");
    let plugin = dir.path().join("creds.sh");
    std::fs::write(
        &plugin,
        "#!/bin/sh\necho '{\"status\":{\"token\":\"TOKEN-FROM-STDOUT\"}}'\necho 'please log in' >&2\nexit 3\n",
    )
    .expect("plugin");
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&plugin)
        .status()
        .expect("chmod");
    let user = format!(
        "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: {}\n      interactiveMode: Never\n      env:\n      - {{name: API_KEY, value: ENV-SECRET}}\n",
        plugin.display()
    );
    let kc = kubeconfig(dir.path(), &server, &user);
    for output in ["text", "json"] {
        let a = diff(dir.path(), &kc, &["--output", output])
            .assert()
            .code(1);
        let out = a.get_output();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!all.contains("TOKEN-FROM-STDOUT"), "{all}");
        assert!(!all.contains("ENV-SECRET"), "{all}");
        assert!(
            all.contains("creds.sh") && all.contains("please log in"),
            "{all}"
        );
    }
}

#[test]
fn verbose_logs_each_request_without_headers() {
    let fake = crate::support::fake_api::FakeApi::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = fake.write_kubeconfig(dir.path());
    let a = diff(dir.path(), &kc, &["-v"]).assert().code(2);
    let stderr = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(stderr.contains("GET /api/v1 200"), "{stderr}");
    assert!(
        !stderr.contains(crate::support::fake_api::TOKEN),
        "the token leaked: {stderr}"
    );
    // The fake serves plain HTTP with a token: said once, up front.
    assert!(
        stderr.contains("credentials are sent over plain HTTP"),
        "{stderr}"
    );
}
