//! A real S3-compatible server for the export tests (issue #19): SeaweedFS's
//! `weed server` (master, volume, filer and S3 gateway in one process) built
//! by `tools/envtest/build.sh seaweedfs` into `$FGM_ENVTEST_BIN`, on 127.0.0.1
//! with free ports, its data in a scratch directory. It can be stopped and
//! started again on the same ports and data (outage tests).
//!
//! Use it with `mod support; mod s3_support;`.

#![allow(dead_code)]

pub mod data;
pub mod queries;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use fine_grained_monitor::s3;

use crate::support::process::{self, free_port, on_supervisor, spawn, wait_until};

pub const ACCESS_KEY: &str = "AKIAFGMTEST0000000001";
pub const SECRET_KEY: &str = "fgm-test-secret-key-0000000000000000000001";
pub const REGION: &str = "us-east-1";

/// A running (or stopped) server.
pub struct S3Server {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    pub dir: PathBuf,
    pub metrics_port: u16,
    args: Vec<String>,
    pid: Mutex<Option<u32>>,
    starts: Mutex<u32>,
}

/// The `-s3.config` identities file: one admin identity with static keys.
pub fn identities_json() -> serde_json::Value {
    serde_json::json!({
        "identities": [{
            "name": "fgm-test",
            "credentials": [{ "accessKey": ACCESS_KEY, "secretKey": SECRET_KEY }],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"]
        }]
    })
}

impl S3Server {
    /// Starts a server named `name`; `iam` is an advanced IAM config (STS,
    /// OIDC providers, roles) merged into the identities file.
    pub fn start(name: &str, iam: Option<serde_json::Value>) -> S3Server {
        let weed = crate::support::find_bin("weed")
            .unwrap_or_else(|e| panic!("{e}; it is built by `tools/envtest/build.sh seaweedfs`"));
        let parent = Path::new(env!("CARGO_TARGET_TMPDIR")).join("s3");
        process::remove_dirs_of_gone_processes(&parent);
        let dir = parent.join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        // A port taken between choosing it and weed binding it makes weed exit at
        // once: start again on other ports (said on stderr), at most three times.
        let mut failures = Vec::new();
        for attempt in 1..=3 {
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(dir.join("data")).expect("create the server's data directory");
            let server = S3Server::configure(&weed, dir.clone(), iam.clone());
            match server.try_launch() {
                Ok(()) => return server,
                Err(e) => {
                    eprintln!("s3: SeaweedFS start {attempt} of 3 failed: {e}");
                    failures.push(e);
                }
            }
        }
        panic!("SeaweedFS did not start:\n{}", failures.join("\n"));
    }

    /// The server's files and command line, on free ports (not started).
    fn configure(weed: &Path, dir: PathBuf, iam: Option<serde_json::Value>) -> S3Server {
        let mut config = identities_json();
        if let Some(serde_json::Value::Object(extra)) = iam.clone() {
            for (k, v) in extra {
                config[k] = v;
            }
        }
        let config_path = dir.join("s3.json");
        std::fs::write(&config_path, config.to_string()).expect("write s3.json");
        let port = || free_port().expect("free port");
        let (s3, metrics) = (port(), port());
        let mut args = vec![
            "server".to_string(),
            format!("-dir={}", dir.join("data").display()),
            "-ip=127.0.0.1".into(),
            "-ip.bind=127.0.0.1".into(),
            format!("-master.port={}", port()),
            format!("-master.port.grpc={}", port()),
            format!("-volume.port={}", port()),
            format!("-volume.port.grpc={}", port()),
            format!("-filer.port={}", port()),
            format!("-filer.port.grpc={}", port()),
            "-s3".into(),
            format!("-s3.port={s3}"),
            format!("-s3.port.grpc={}", port()),
            format!("-s3.config={}", config_path.display()),
            // Small volumes: the test machine's disk is shared. A fixed volume count,
            // not `0` (free space / volume size): every bucket is a collection that
            // grows 7 volumes at its first write, so on a disk with ~2 GiB free the
            // automatic count ran out at the fifth bucket and its writes got HTTP 500
            // (seen in CI). Volumes are not preallocated; the count costs no space.
            "-master.volumeSizeLimitMB=64".into(),
            "-volume.max=100".into(),
            // The default (1 % of the disk) marks every volume read-only on a large,
            // mostly full disk although gigabytes are free.
            "-volume.minFreeSpace=256MiB".into(),
            format!("-metricsPort={metrics}"),
        ];
        if iam.is_some() {
            args.push(format!("-s3.iam.config={}", config_path.display()));
        }
        args.insert(0, weed.display().to_string());
        S3Server {
            endpoint: format!("http://127.0.0.1:{s3}"),
            dir,
            metrics_port: metrics,
            args,
            pid: Mutex::new(None),
            starts: Mutex::new(0),
        }
    }

    /// Starts the process and waits until the S3 API answers a signed listing.
    fn launch(&self) {
        self.try_launch().unwrap_or_else(|e| panic!("{e}"));
    }

    /// [`Self::launch`], the failure returned.
    fn try_launch(&self) -> Result<(), String> {
        let n = {
            let mut starts = self.starts.lock().unwrap_or_else(|p| p.into_inner());
            *starts += 1;
            *starts
        };
        let log = self.dir.join(format!("weed-{n}.log"));
        let (bin, args) = (PathBuf::from(&self.args[0]), self.args[1..].to_vec());
        let mut proc =
            on_supervisor(move || spawn(&bin, &args, log)).unwrap_or_else(|e| panic!("{e}"));
        *self.pid.lock().unwrap_or_else(|p| p.into_inner()) = Some(proc.child.id());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let client = self.admin_client("fgm-probe");
        let began = Instant::now();
        wait_until(
            "SeaweedFS S3 API",
            Duration::from_secs(120),
            &mut [&mut proc],
            || {
                // A missing bucket answers once the gateway, filer and master are up.
                runtime.block_on(async {
                    matches!(client.list("", None).await, Err(e) if e.reason() == "NoSuchBucket")
                })
            },
        )?;
        // Free space decides whether volumes can grow: said here for a failing run.
        let free_mib = rustix::fs::statvfs(&self.dir)
            .map(|v| v.f_bavail.saturating_mul(v.f_frsize) >> 20)
            .unwrap_or(0);
        eprintln!(
            "s3: SeaweedFS ready at {} in {:.1?} ({}, {free_mib} MiB free)",
            self.endpoint,
            began.elapsed(),
            self.dir.display()
        );
        drop(proc);
        Ok(())
    }

    /// Stops the server (SIGTERM, then SIGKILL after 5 s); the data stays.
    pub fn stop(&self) {
        let Some(pid) = self.pid.lock().unwrap_or_else(|p| p.into_inner()).take() else {
            return;
        };
        process::stop(pid, "weed");
    }

    /// Starts it again on the same ports and data.
    pub fn restart(&self) {
        self.launch();
    }

    /// A client with the admin's static keys.
    pub fn admin_client(&self, bucket: &str) -> s3::Client {
        let config = s3::BucketConfig::new(Some(&self.endpoint), bucket, REGION, true)
            .expect("bucket config");
        let http = s3::transport::HttpClient::new(None, Duration::from_secs(30)).expect("http");
        let creds = s3::Source::Static(s3::Credentials::new(ACCESS_KEY, SECRET_KEY, None, None));
        s3::Client::new(
            http.clone(),
            config,
            Arc::new(s3::Provider::new(creds, http)),
        )
    }

    /// Creates `bucket` and returns an admin client for it.
    pub async fn bucket(&self, bucket: &str) -> s3::Client {
        let client = self.admin_client(bucket);
        client
            .create_bucket()
            .await
            .unwrap_or_else(|e| panic!("create bucket {bucket}: {e}"));
        client
    }

    /// Bytes the server sent to clients from `bucket` (its own metric).
    pub fn sent_bytes(&self, bucket: &str) -> u64 {
        let text = http_get(self.metrics_port, "/metrics").unwrap_or_default();
        text.lines()
            .filter(|l| {
                l.starts_with("SeaweedFS_s3_bucket_traffic_sent_bytes_total{")
                    && l.contains(&format!("bucket=\"{bucket}\""))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .map(|v| v as u64)
            .sum()
    }

    /// Successful PUT requests the server counted for `bucket` (its own metric).
    pub fn put_count(&self, bucket: &str) -> u64 {
        let text = http_get(self.metrics_port, "/metrics").unwrap_or_default();
        text.lines()
            .filter(|l| {
                l.starts_with("SeaweedFS_s3_request_total{")
                    && l.contains(&format!("bucket=\"{bucket}\""))
                    && l.contains("type=\"PUT\"")
                    && l.contains("code=\"200\"")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .map(|v| v as u64)
            .sum()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Environment of an agent that uses the admin's static keys.
pub fn static_env() -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_string()),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_string()),
    ]
}

/// GET `path` from 127.0.0.1:`port` (HTTP/1.0, whole body); `None` when unreachable.
pub fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    (head.split_whitespace().nth(1) == Some("200")).then(|| body.to_string())
}

/// The fine-grained-monitor agent binary exporting to a bucket, on a fixture cgroup tree.
pub struct ExportingAgent {
    pub child: std::process::Child,
    pub metrics_port: u16,
}

/// Starts `fine-grained-monitor agent` (100 ms samples, 1 s rotation, fixture
/// cgroups, no API) writing `data` and exporting to `bucket` on `server`.
pub fn start_agent(
    server: &S3Server,
    data: &Path,
    node: &str,
    bucket: &str,
    env: &[(&str, String)],
    extra: &[&str],
) -> ExportingAgent {
    start_agent_on(
        free_port().expect("free port"),
        server,
        data,
        node,
        bucket,
        env,
        extra,
    )
}

/// [`start_agent`] with its metrics endpoint on `metrics_port`.
pub fn start_agent_on(
    metrics_port: u16,
    server: &S3Server,
    data: &Path,
    node: &str,
    bucket: &str,
    env: &[(&str, String)],
    extra: &[&str],
) -> ExportingAgent {
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cgroup/v1-cgroupfs-docker");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fine-grained-monitor"));
    cmd.args([
        "agent",
        "--interval",
        "100ms",
        "--rotation",
        "1s",
        "--enrichment=false",
    ])
    .arg("--data-dir")
    .arg(data)
    .arg("--cgroup-root")
    .arg(&fixture)
    .args(["--node-name", node])
    .arg(format!("--metrics-addr=127.0.0.1:{metrics_port}"))
    .arg(format!("--export-endpoint={}", server.endpoint))
    .arg(format!("--export-bucket={bucket}"))
    .args([
        "--export-prefix",
        "fgm/test",
        "--export-path-style=true",
        "--export-retry-max=2s",
    ])
    .args(extra)
    .env("FGM_LOG_LEVEL", "info")
    .env_remove("AWS_ACCESS_KEY_ID")
    .env_remove("AWS_SECRET_ACCESS_KEY")
    .env_remove("AWS_WEB_IDENTITY_TOKEN_FILE")
    .stdin(std::process::Stdio::null())
    .stdout(std::process::Stdio::null())
    .stderr(
        std::fs::File::create(server.dir.join(format!(
                "agent-{node}-{}.log",
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis())
                    .unwrap_or(0)
            )))
        .map(std::process::Stdio::from)
        .unwrap_or_else(|_| std::process::Stdio::null()),
    );
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().expect("agent binary starts");
    ExportingAgent {
        child,
        metrics_port,
    }
}

impl ExportingAgent {
    /// The agent's `GET /export` status.
    pub fn status(&self) -> Option<serde_json::Value> {
        serde_json::from_str(&http_get(self.metrics_port, "/export")?).ok()
    }

    /// Polls the status until `ready` holds (panics after `timeout`, with the last status).
    pub fn wait_status(
        &self,
        what: &str,
        timeout: Duration,
        ready: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let began = Instant::now();
        let mut last = None;
        while began.elapsed() < timeout {
            if let Some(s) = self.status() {
                if ready(&s) {
                    return s;
                }
                last = Some(s);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("agent export status: {what} not reached within {timeout:?}; last: {last:?}");
    }

    /// SIGTERM and wait: the agent writes its open interval and uploads what it can.
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().expect("wait for the agent");
        assert!(
            status.success(),
            "agent exits cleanly on SIGTERM: {status:?}"
        );
    }

    /// SIGKILL: no clean-up at all.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ExportingAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
