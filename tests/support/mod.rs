//! A real Kubernetes control plane for integration tests (issue #3), the way controller-runtime's
//! envtest does it: etcd + kube-apiserver started from the upstream binaries that
//! `tools/envtest/build.sh` builds into `target/envtest/bin` (or `$FGM_ENVTEST_BIN`), on
//! 127.0.0.1 with free ports, fresh certificates and an admin kubeconfig.
//!
//! One control plane per test binary, started by the first [`control_plane`] call and shared by
//! every test in it; each test takes its own namespace ([`ControlPlane::namespace`]).
//! kube-controller-manager, kube-scheduler and kwok start only when a test asks for workloads
//! ([`ControlPlane::start_workloads`]). Children die with the test process, even on SIGKILL
//! (see `process.rs`). A missing binary fails the test naming it and the build command.
//!
//! Use it from an integration test with `mod support;`.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

pub mod node;
pub mod pki;
pub mod process;
pub mod view;
pub mod workloads;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use process::{free_port, on_supervisor, spawn, wait_until};

/// The Kubernetes version the binaries are built for (k8s-openapi feature `v1_37`).
pub const KUBERNETES_VERSION: &str = "v1.37.2";
/// The command that builds the binaries.
pub const BUILD_COMMAND: &str = "tools/envtest/build.sh";
/// Field manager of the support code's own server-side applies.
const FIELD_MANAGER: &str = "fgm-envtest";

/// A running control plane: where it listens and the files a client needs.
pub struct ControlPlane {
    /// Scratch directory (certificates, etcd data, logs), removed by the next run.
    pub dir: PathBuf,
    /// Directory of the built binaries.
    pub bin_dir: PathBuf,
    /// `https://127.0.0.1:<port>`.
    pub server: String,
    /// Admin kubeconfig (client certificate in `system:masters`), for kubectl, helm, kwok.
    pub kubeconfig: PathBuf,
    /// Certificates and service-account key pair.
    pub pki: pki::Pki,
    /// How long etcd + apiserver took from spawn to `/readyz` = ok.
    pub startup: Duration,
    workloads: OnceLock<Result<(), String>>,
    apiserver: ApiserverCommand,
}

/// Directory of the built binaries: `$FGM_ENVTEST_BIN`, else `target/envtest/bin`.
pub fn bin_dir() -> PathBuf {
    std::env::var_os("FGM_ENVTEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/envtest/bin"))
}

/// Path of the built binary `name`, or an error naming it and the command that builds it.
pub fn find_bin(name: &str) -> Result<PathBuf, String> {
    let path = bin_dir().join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "control-plane binary `{name}` not found at {}: build it with `{BUILD_COMMAND}` \
             (or point FGM_ENVTEST_BIN at a directory holding it)",
            path.display()
        ))
    }
}

static CONTROL_PLANE: OnceLock<Result<ControlPlane, String>> = OnceLock::new();

/// The control plane of this test binary, started on first use. Panics (failing the calling
/// test) with the reason if it cannot start, e.g. a missing binary.
pub fn control_plane() -> &'static ControlPlane {
    match CONTROL_PLANE.get_or_init(|| on_supervisor(start)) {
        Ok(cp) => cp,
        Err(e) => panic!("test control plane unavailable: {e}"),
    }
}

/// Where the apiserver listens, and whether pods on a real node use it (tests/support/node).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Listen {
    /// Bind and advertise address.
    pub address: &'static str,
    /// Keep the `kubernetes` Service's endpoints pointing at `address` (pods reach the API through
    /// it and kube-proxy); a loopback address is refused by the endpoint reconciler.
    pub service_endpoints: bool,
}

/// The loopback control plane most tests use.
const LOOPBACK: Listen = Listen {
    address: "127.0.0.1",
    service_endpoints: false,
};

/// Runs on the supervisor thread: certificates, etcd, kube-apiserver, readiness.
fn start() -> Result<ControlPlane, String> {
    start_on(LOOPBACK)
}

/// [`start`] with the apiserver on `listen`.
pub(crate) fn start_on(listen: Listen) -> Result<ControlPlane, String> {
    // Fail on a missing binary before making certificates.
    find_bin("etcd")?;
    find_bin("kube-apiserver")?;
    let parent = scratch_root().join("envtest");
    process::remove_dirs_of_gone_processes(&parent);
    let dir = parent.join(std::process::id().to_string());
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let pki = pki::generate(&dir)?;

    // A free port can be taken by another process before etcd or the apiserver binds it
    // (other test binaries start control planes at the same time): try again with new ports.
    let mut attempt = 1;
    loop {
        match launch(&dir, &pki, attempt, listen) {
            Ok((server, kubeconfig, startup, apiserver)) => {
                return Ok(ControlPlane {
                    dir,
                    bin_dir: bin_dir(),
                    server,
                    kubeconfig,
                    pki,
                    startup,
                    workloads: OnceLock::new(),
                    apiserver,
                });
            }
            Err(e) if attempt < 3 && e.contains("address already in use") => {
                eprintln!("envtest: port clash on attempt {attempt}, retrying: {e}");
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Parent of the scratch directories: cargo's per-target temporary directory for tests, else
/// `target/tmp` (the `fgm-cluster` example that `make cluster` runs).
pub fn scratch_root() -> PathBuf {
    option_env!("CARGO_TARGET_TMPDIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tmp"))
}

/// Sets the control plane of this process (the real node starts its own, see `node`).
pub(crate) fn set_control_plane(cp: Result<ControlPlane, String>) -> &'static ControlPlane {
    if CONTROL_PLANE.set(cp).is_err() {
        panic!("a control plane was started before the real node's: call node::world() first");
    }
    control_plane()
}

/// kube-apiserver's binary and flags, to start it again after [`ControlPlane::stop_apiserver`].
type ApiserverCommand = (PathBuf, Vec<String>);

/// Starts etcd and kube-apiserver on fresh ports and waits for `/readyz`; returns the server
/// URL, the admin kubeconfig, the start-up time and the apiserver's command. On failure both processes are killed.
fn launch(
    dir: &Path,
    pki: &pki::Pki,
    attempt: u32,
    listen: Listen,
) -> Result<(String, PathBuf, Duration, ApiserverCommand), String> {
    let etcd_bin = find_bin("etcd")?;
    let apiserver_bin = find_bin("kube-apiserver")?;
    let began = Instant::now();
    let (etcd_port, etcd_peer, api_port) = (free_port()?, free_port()?, free_port()?);
    let etcd_url = format!("http://127.0.0.1:{etcd_port}");
    let peer_url = format!("http://127.0.0.1:{etcd_peer}");
    let mut etcd = spawn(
        &etcd_bin,
        &[
            "--name=envtest".into(),
            format!(
                "--data-dir={}",
                dir.join(format!("etcd-{attempt}")).display()
            ),
            format!("--listen-client-urls={etcd_url}"),
            format!("--advertise-client-urls={etcd_url}"),
            format!("--listen-peer-urls={peer_url}"),
            format!("--initial-advertise-peer-urls={peer_url}"),
            format!("--initial-cluster=envtest={peer_url}"),
            // Test data is thrown away: skip fsync, it dominates etcd latency on slow disks.
            "--unsafe-no-fsync=true".into(),
            "--log-level=warn".into(),
        ],
        dir.join(format!("etcd-{attempt}.log")),
    )?;
    let server = format!("https://{}:{api_port}", listen.address);
    let arg = |name: &str, path: &Path| format!("--{name}={}", path.display());
    let apiserver_args: Vec<String> = vec![
        format!("--etcd-servers={etcd_url}"),
        format!("--bind-address={}", listen.address),
        format!("--advertise-address={}", listen.address),
        // A loopback advertise address is refused by the endpoint reconciler (1.37): without a
        // real node nothing in-cluster needs the `kubernetes` Service's endpoints.
        format!(
            "--endpoint-reconciler-type={}",
            if listen.service_endpoints {
                "lease"
            } else {
                "none"
            }
        ),
        format!("--secure-port={api_port}"),
        arg("cert-dir", &dir.join("apiserver-certs")),
        arg("tls-cert-file", &pki.serving_cert),
        arg("tls-private-key-file", &pki.serving_key),
        arg("client-ca-file", &pki.ca_cert),
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
        arg("service-account-key-file", &pki.sa_pub),
        arg("service-account-signing-key-file", &pki.sa_key),
        "--service-cluster-ip-range=10.96.0.0/16".into(),
        // Node: the real node's kubelet reads what its pods need, as in any cluster.
        "--authorization-mode=Node,RBAC".into(),
        arg("kubelet-client-certificate", &pki.kubelet_client_cert),
        arg("kubelet-client-key", &pki.kubelet_client_key),
        "--kubelet-preferred-address-types=InternalIP".into(),
        "--allow-privileged=true".into(),
        // Webhooks (the NodeMonitor conversion webhook) are called at their Service's endpoint
        // addresses, not its cluster IP, as on control planes that run no kube-proxy: the
        // machine routes the pod network to the real node (support/node/network.rs).
        "--enable-aggregator-routing=true".into(),
    ];
    let mut apiserver = spawn(
        &apiserver_bin,
        &apiserver_args,
        dir.join(format!("kube-apiserver-{attempt}.log")),
    )?;

    let kubeconfig = dir.join("admin.kubeconfig");
    std::fs::write(
        &kubeconfig,
        pki::kubeconfig(&server, pki, &pki::admin_user(pki)),
    )
    .map_err(|e| format!("cannot write {}: {e}", kubeconfig.display()))?;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot build a tokio runtime: {e}"))?;
    let client = runtime.block_on(client_from_kubeconfig(&kubeconfig))?;
    wait_until(
        "kube-apiserver /readyz",
        Duration::from_secs(120),
        &mut [&mut etcd, &mut apiserver],
        || {
            runtime.block_on(async {
                let req = http::Request::get("/readyz").body(Vec::new());
                match req {
                    Ok(req) => client.request_text(req).await.is_ok_and(|t| t == "ok"),
                    Err(_) => false,
                }
            })
        },
    )?;
    let startup = began.elapsed();
    eprintln!(
        "envtest: control plane {KUBERNETES_VERSION} ready at {server} in {startup:.1?} ({})",
        dir.display()
    );
    // Dropping a Child neither kills nor waits: the processes run on, die with this process,
    // and their ids stay listed in process::PROCS.
    drop((etcd, apiserver));
    Ok((server, kubeconfig, startup, (apiserver_bin, apiserver_args)))
}

/// A client from a kubeconfig file.
pub async fn client_from_kubeconfig(path: &Path) -> Result<Client, String> {
    let kc = Kubeconfig::read_from(path)
        .map_err(|e| format!("cannot read kubeconfig {}: {e}", path.display()))?;
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .map_err(|e| format!("bad kubeconfig {}: {e}", path.display()))?;
    Client::try_from(config).map_err(|e| format!("cannot build client: {e}"))
}

/// Keeps per-binary namespace names unique.
static NAMESPACES: AtomicU32 = AtomicU32::new(0);

impl ControlPlane {
    /// An admin client (`system:masters`) bound to the caller's tokio runtime.
    pub async fn client(&self) -> Client {
        client_from_kubeconfig(&self.kubeconfig)
            .await
            .expect("admin client for the test control plane")
    }

    /// A client that authenticates with a bearer `token` (e.g. a ServiceAccount token).
    pub async fn client_with_token(&self, token: &str) -> Client {
        let path = self.dir.join(format!(
            "token-{}.kubeconfig",
            NAMESPACES.fetch_add(1, Ordering::Relaxed)
        ));
        let user = format!("    token: {token}");
        std::fs::write(&path, pki::kubeconfig(&self.server, &self.pki, &user))
            .expect("write token kubeconfig");
        client_from_kubeconfig(&path).await.expect("token client")
    }

    /// Creates a fresh namespace named `<prefix>-<n>` with its `default` ServiceAccount (which
    /// the controller-manager would otherwise create; pods are refused without it).
    pub async fn namespace(&self, client: &Client, prefix: &str) -> String {
        let name = format!("{prefix}-{}", NAMESPACES.fetch_add(1, Ordering::Relaxed));
        let ns: Namespace = serde_json::from_value(serde_json::json!({
            "metadata": { "name": name, "labels": { "fgm.dev/test": prefix } }
        }))
        .expect("namespace object");
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .unwrap_or_else(|e| panic!("create namespace {name}: {e}"));
        let sa: ServiceAccount =
            serde_json::from_value(serde_json::json!({ "metadata": { "name": "default" } }))
                .expect("service account object");
        match Api::<ServiceAccount>::namespaced(client.clone(), &name)
            .create(&PostParams::default(), &sa)
            .await
        {
            Ok(_) => {}
            // The controller-manager's ServiceAccount controller got there first.
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => panic!("create default ServiceAccount in {name}: {e}"),
        }
        name
    }

    /// Installs (server-side applies) `crd` and waits until it is Established and its first
    /// served version answers a list.
    pub async fn install_crd(
        &self,
        client: &Client,
        crd: &CustomResourceDefinition,
    ) -> Result<(), kube::Error> {
        let name = crd.metadata.name.clone().unwrap_or_default();
        let api = Api::<CustomResourceDefinition>::all(client.clone());
        api.patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(crd),
        )
        .await?;
        self.wait_established(client, crd).await
    }

    /// Waits until `crd` is Established and its first served version answers a list.
    pub async fn wait_established(
        &self,
        client: &Client,
        crd: &CustomResourceDefinition,
    ) -> Result<(), kube::Error> {
        let name = crd.metadata.name.clone().unwrap_or_default();
        let api = Api::<CustomResourceDefinition>::all(client.clone());
        let version = crd
            .spec
            .versions
            .iter()
            .find(|v| v.served)
            .map(|v| v.name.clone())
            .unwrap_or_default();
        let resource = ApiResource {
            group: crd.spec.group.clone(),
            version: version.clone(),
            api_version: format!("{}/{version}", crd.spec.group),
            kind: crd.spec.names.kind.clone(),
            plural: crd.spec.names.plural.clone(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let established = api.get(&name).await?.status.is_some_and(|s| {
                s.conditions
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            });
            let listed = established
                && Api::<DynamicObject>::all_with(client.clone(), &resource)
                    .list(&ListParams::default().limit(1))
                    .await
                    .is_ok();
            if listed {
                return Ok(());
            }
            assert!(
                Instant::now() < deadline,
                "CRD {name} not established and served within 30s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Installs the crate's own NodeMonitor CRD (as `fine-grained-monitor crd` prints it) unless
    /// it is there: an operator of the test may have applied its own conversion webhook to it
    /// (`--webhook-url`), which applying the generated one again would clash with.
    pub async fn install_nodemonitor_crd(&self, client: &Client) {
        let crd = fine_grained_monitor::crd::crd();
        let api = Api::<CustomResourceDefinition>::all(client.clone());
        let name = fine_grained_monitor::crd::CRD_NAME;
        let present = api
            .get_opt(name)
            .await
            .unwrap_or_else(|e| panic!("read CRD {name}: {e}"))
            .is_some();
        if !present {
            match api.create(&PostParams::default(), &crd).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 409 => {}
                Err(e) => panic!("the apiserver refused the NodeMonitor CRD: {e}"),
            }
        }
        // Established and served (an apply of the object as it is changes nothing).
        let mut served = api.get(name).await.expect("read the CRD");
        served.metadata.managed_fields = None;
        served.metadata.resource_version = None;
        self.wait_established(client, &served)
            .await
            .unwrap_or_else(|e| panic!("NodeMonitor CRD not served: {e}"));
    }

    /// `kubectl` (built for this Kubernetes version) with the admin kubeconfig.
    pub fn kubectl(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(self.bin("kubectl"));
        cmd.env("KUBECONFIG", &self.kubeconfig);
        cmd
    }

    /// `helm` with the admin kubeconfig and its caches inside the scratch directory.
    pub fn helm(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(self.bin("helm"));
        cmd.env("KUBECONFIG", &self.kubeconfig);
        for (var, sub) in [
            ("HELM_CACHE_HOME", "helm/cache"),
            ("HELM_CONFIG_HOME", "helm/config"),
            ("HELM_DATA_HOME", "helm/data"),
        ] {
            cmd.env(var, self.dir.join(sub));
        }
        cmd
    }

    /// Path of a built binary; panics naming it and the build command when missing.
    pub fn bin(&self, name: &str) -> PathBuf {
        find_bin(name).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Stops kube-apiserver (SIGTERM, SIGKILL after 5 s: open watches would hold a graceful
    /// stop for a minute); etcd keeps the data. For outage tests in a test binary of their
    /// own: every test sharing the control plane loses the API.
    pub fn stop_apiserver(&self) {
        let pid = self
            .pids()
            .iter()
            .rev()
            .find(|(name, _)| name == "kube-apiserver")
            .map(|(_, pid)| *pid)
            .expect("kube-apiserver was started");
        process::stop(pid, "kube-apiserver");
    }

    /// Starts kube-apiserver again with the same flags (same port) and waits for `/readyz`.
    pub fn start_apiserver(&self) {
        let (bin, args) = self.apiserver.clone();
        let n = NAMESPACES.fetch_add(1, Ordering::Relaxed);
        let log = self.dir.join(format!("kube-apiserver-{n}.log"));
        let mut proc =
            on_supervisor(move || spawn(&bin, &args, log)).unwrap_or_else(|e| panic!("{e}"));
        let kubeconfig = self.kubeconfig.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let client = runtime
            .block_on(client_from_kubeconfig(&kubeconfig))
            .expect("admin client");
        wait_until(
            "restarted kube-apiserver /readyz",
            Duration::from_secs(120),
            &mut [&mut proc],
            || {
                runtime.block_on(async {
                    match http::Request::get("/readyz").body(Vec::new()) {
                        Ok(req) => client.request_text(req).await.is_ok_and(|t| t == "ok"),
                        Err(_) => false,
                    }
                })
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
        drop(proc);
    }

    /// Stops kube-apiserver, gives it a new serving key and certificate under the same CA, and
    /// starts it again: clients that trust the CA must reconnect without noticing more.
    pub fn restart_apiserver_with_new_key(&self) {
        self.stop_apiserver();
        let dir = self.pki.ca_cert.parent().expect("the PKI's directory");
        pki::apiserver_serving(dir).unwrap_or_else(|e| panic!("{e}"));
        self.start_apiserver();
    }

    /// etcd's client URL (`http://127.0.0.1:<port>`), from the apiserver's flags.
    pub fn etcd_url(&self) -> String {
        self.apiserver
            .1
            .iter()
            .find_map(|a| a.strip_prefix("--etcd-servers="))
            .expect("the apiserver names etcd")
            .to_string()
    }

    /// Calls etcd's JSON gateway (`POST <etcd>/v3/<path>`, e.g. `kv/range`, `kv/compaction`)
    /// with `body`; the decoded answer, or an error with what etcd said.
    pub fn etcd_call(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, String> {
        use std::io::{Read, Write};
        let url = self.etcd_url();
        let addr = url.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(addr)
            .map_err(|e| format!("cannot reach etcd at {addr}: {e}"))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(|e| e.to_string())?;
        let body = body.to_string();
        write!(
            stream,
            "POST /v3/{path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .map_err(|e| format!("cannot write to etcd: {e}"))?;
        let mut out = String::new();
        stream
            .read_to_string(&mut out)
            .map_err(|e| format!("cannot read etcd's answer: {e}"))?;
        let (head, json) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
        if !head.starts_with("HTTP/1.1 200") {
            return Err(format!("etcd {path}: {head} {json}"));
        }
        // A chunked answer: the JSON object is between the first '{' and the last '}'.
        let (start, end) = (json.find('{'), json.rfind('}'));
        match (start, end) {
            (Some(s), Some(e)) => serde_json::from_str(&json[s..=e])
                .map_err(|err| format!("etcd {path}: {err}: {json}")),
            _ => Err(format!("etcd {path}: no JSON in {json:?}")),
        }
    }

    /// Process ids of every child started so far (name, pid).
    pub fn pids(&self) -> Vec<(String, u32)> {
        process::PROCS
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}
