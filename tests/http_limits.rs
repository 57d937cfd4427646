//! Slow and oversized requests against every real server of the product: the
//! viewer (`fgm-viewer` process), the agent's Prometheus endpoint
//! (`fine-grained-monitor agent` process on a fixture cgroup tree) and the
//! operator's metrics and probes (its server on a real socket; the operator
//! process itself needs an apiserver). Each is started with short limits from
//! its real flags, then attacked over TCP while a normal request must still
//! answer:
//!
//! - slow-loris clients dribbling headers, and idle connections: cut off at
//!   the header timeout;
//! - a head over the size cap: 431; a body over it: 413;
//! - every connection slot taken: a new client waits, and is served once the
//!   idle ones are cut.

// Test crate: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fine_grained_monitor::http::Limits;
use fine_grained_monitor::operator::server::{Shared, serve};
use tokio_util::sync::CancellationToken;

const HEADER_TIMEOUT: Duration = Duration::from_secs(1);
const MAX_CONNECTIONS: usize = 6;
const MAX_BYTES: usize = 4096;

/// The limits as flags, the way an operator sets them.
fn flags() -> Vec<String> {
    [
        "--http-header-timeout=1s",
        "--http-request-timeout=5s",
        "--http-max-connections=6",
        "--http-max-requests=4",
        "--http-max-request-bytes=4Ki",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// A server process, killed when dropped.
struct Server {
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

fn start(bin: &str, args: &[String], addr: SocketAddr, log: &Path) -> Server {
    let out = std::fs::File::create(log).unwrap();
    let child = Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap_or_else(|e| panic!("start {bin}: {e}"));
    let mut server = Server { child };
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(addr).is_err() {
        if let Ok(Some(status)) = server.child.try_wait() {
            panic!(
                "{bin} exited with {status}:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(Instant::now() < deadline, "{bin} does not listen on {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

/// One request on a fresh connection: the status code (0 when the server closed without one).
fn status_of(addr: SocketAddr, request: &[u8]) -> u16 {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // The server may answer and close before the whole request is written.
    let _ = s.write_all(request);
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    text.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").into_bytes()
}

/// Whether the server closed `s` within `limit` while the client kept
/// dribbling header lines every 100 ms (`dribble`) or stayed silent.
fn closed_within(mut s: TcpStream, limit: Duration, dribble: bool) -> bool {
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let deadline = Instant::now() + limit;
    let mut byte = [0u8; 512];
    while Instant::now() < deadline {
        if dribble && s.write_all(b"X-Slow: 1\r\n").is_err() {
            return true;
        }
        match s.read(&mut byte) {
            Ok(0) => return true,
            Ok(_) => panic!(
                "the server answered an unfinished request: {}",
                String::from_utf8_lossy(&byte)
            ),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return true,
        }
    }
    false
}

/// Every attack against the server at `addr`; `normal` is a path that answers `ok_status`.
fn attack(name: &str, addr: SocketAddr, normal: &str, ok_status: u16) {
    assert_eq!(
        status_of(addr, &get(normal)),
        ok_status,
        "{name}: normal request"
    );

    // Slow-loris: headers dribbled line by line never finish.
    let began = Instant::now();
    let slow: Vec<TcpStream> = (0..MAX_CONNECTIONS - 2)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
            s
        })
        .collect();
    let dribblers: Vec<_> = slow
        .into_iter()
        .map(|s| std::thread::spawn(move || closed_within(s, Duration::from_secs(10), true)))
        .collect();
    // Meanwhile a normal client is served.
    assert_eq!(
        status_of(addr, &get(normal)),
        ok_status,
        "{name}: normal request during the slow-loris attack"
    );
    for d in dribblers {
        assert!(
            d.join().unwrap(),
            "{name}: a slow-loris connection was not cut off"
        );
    }
    assert!(
        began.elapsed() >= HEADER_TIMEOUT,
        "{name}: cut off before the header timeout"
    );

    // An idle connection is closed too.
    let idle = TcpStream::connect(addr).unwrap();
    assert!(
        closed_within(idle, Duration::from_secs(10), false),
        "{name}: idle connection kept open"
    );

    // Oversized head (one long header) and oversized body.
    let big_header = format!(
        "GET {normal} HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(2 * MAX_BYTES)
    );
    assert_eq!(
        status_of(addr, big_header.as_bytes()),
        431,
        "{name}: oversized head"
    );
    let long_uri = format!("{normal}?pad={}", "b".repeat(2 * MAX_BYTES));
    assert_eq!(status_of(addr, &get(&long_uri)), 431, "{name}: long URI");
    let body = vec![b'x'; 64 * 1024];
    let mut post = format!(
        "POST {normal} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    post.extend_from_slice(&body);
    assert_eq!(status_of(addr, &post), 413, "{name}: oversized body");
    assert_eq!(
        status_of(addr, &get(normal)),
        ok_status,
        "{name}: normal request after the attacks"
    );

    // Every connection slot taken by idle clients: a new one waits, then is served.
    let hogs: Vec<TcpStream> = (0..MAX_CONNECTIONS)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    let mut waiting = TcpStream::connect(addr).unwrap();
    waiting.write_all(&get(normal)).unwrap();
    waiting
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 64];
    match waiting.read(&mut buf) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("{name}: served beyond the connection cap: {other:?}"),
    }
    waiting
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut answer = Vec::new();
    let _ = waiting.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with(&format!("HTTP/1.1 {ok_status}")),
        "{name}: the waiting client was not served once slots freed: {answer:?}"
    );
    drop(hogs);
}

#[test]
fn viewer_cuts_off_slow_and_oversized_requests() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let addr = free_addr();
    let mut args = vec![
        data.display().to_string(),
        format!("--port={}", addr.port()),
        "--no-browser".into(),
    ];
    args.extend(flags());
    let _server = start(
        env!("CARGO_BIN_EXE_fgm-viewer"),
        &args,
        addr,
        &dir.path().join("viewer.log"),
    );
    attack("viewer", addr, "/healthz", 200);
}

#[test]
fn agent_metrics_endpoint_cuts_off_slow_and_oversized_requests() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cgroup");
    let addr = free_addr();
    let mut args: Vec<String> = vec![
        "agent".into(),
        format!("--data-dir={}", dir.path().join("data").display()),
        format!(
            "--cgroup-root={}",
            fixtures.join("v2-systemd-containerd").display()
        ),
        format!(
            "--proc-root={}",
            fixtures.join("v2-systemd-containerd.proc").display()
        ),
        "--node-name=http-limits".into(),
        "--enrichment=false".into(),
        format!("--metrics-addr={addr}"),
    ];
    args.extend(flags());
    let _server = start(
        env!("CARGO_BIN_EXE_fine-grained-monitor"),
        &args,
        addr,
        &dir.path().join("agent.log"),
    );
    attack("agent", addr, "/", 200);
}

#[test]
fn operator_endpoints_cut_off_slow_and_oversized_requests() {
    use clap::Parser;
    // The limits come from the operator's own flags.
    let mut argv = vec!["fine-grained-monitor".to_string(), "operator".into()];
    argv.extend(flags());
    let cli = fine_grained_monitor::cli::Cli::try_parse_from(argv).unwrap();
    let fine_grained_monitor::cli::Mode::Operator(args) = cli.mode else {
        panic!("operator mode")
    };
    let limits = Limits::from(&args.http);
    assert_eq!(limits.header_timeout, HEADER_TIMEOUT);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let server = rt.spawn(serve(
        listener,
        Arc::new(Shared::default()),
        limits,
        stop.clone(),
    ));
    attack("operator", addr, "/healthz", 200);
    stop.cancel();
    rt.block_on(server).unwrap();
}
