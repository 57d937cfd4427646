//! Workloads on demand: kube-controller-manager and kube-scheduler turn DaemonSets into bound
//! pods, kwok plays the kubelet of fake nodes (marks them Ready and their pods Running).
//! Started only by tests that need them: they cost CPU the other tests do not need.

use std::net::TcpStream;
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kube::Client;
use kube::api::{Api, PostParams};

use super::process::{free_port, on_supervisor, spawn, wait_until};
use super::{ControlPlane, find_bin};

/// Annotation kwok is told to manage nodes by.
pub const FAKE_NODE_ANNOTATION: (&str, &str) = ("kwok.x-k8s.io/node", "fake");

impl ControlPlane {
    /// Starts kube-controller-manager, kube-scheduler and kwok once for this test binary.
    /// Panics naming what is missing or what failed.
    pub fn start_workloads(&'static self) {
        let started = self
            .workloads
            .get_or_init(|| on_supervisor(move || self.spawn_workloads()));
        if let Err(e) = started {
            panic!("workload processes unavailable: {e}");
        }
    }

    /// Runs on the supervisor thread.
    fn spawn_workloads(&self) -> Result<(), String> {
        let kcm_bin = find_bin("kube-controller-manager")?;
        let scheduler_bin = find_bin("kube-scheduler")?;
        let kwok_bin = find_bin("kwok")?;
        let stages = self.bin_dir.join("kwok-stages.yaml");
        if !stages.is_file() {
            return Err(format!(
                "{} not found: it is written by `{}`",
                stages.display(),
                super::BUILD_COMMAND
            ));
        }
        let kubeconfig = self.kubeconfig.display().to_string();
        let auth = [
            format!("--kubeconfig={kubeconfig}"),
            format!("--authentication-kubeconfig={kubeconfig}"),
            format!("--authorization-kubeconfig={kubeconfig}"),
            "--bind-address=127.0.0.1".into(),
            "--leader-elect=false".into(),
        ];

        let kcm_port = free_port()?;
        let mut kcm_args = auth.to_vec();
        kcm_args.extend([
            format!("--secure-port={kcm_port}"),
            format!("--cert-dir={}", self.dir.join("kcm-certs").display()),
            format!(
                "--service-account-private-key-file={}",
                self.pki.sa_key.display()
            ),
            format!("--root-ca-file={}", self.pki.ca_cert.display()),
            "--use-service-account-credentials=false".into(),
        ]);
        let mut kcm = spawn(
            &kcm_bin,
            &kcm_args,
            self.dir.join("kube-controller-manager.log"),
        )?;

        let scheduler_port = free_port()?;
        let mut scheduler_args = auth.to_vec();
        scheduler_args.extend([
            format!("--secure-port={scheduler_port}"),
            format!("--cert-dir={}", self.dir.join("scheduler-certs").display()),
        ]);
        let mut scheduler = spawn(
            &scheduler_bin,
            &scheduler_args,
            self.dir.join("kube-scheduler.log"),
        )?;

        let kwok_port = free_port()?;
        let mut kwok = spawn(
            &kwok_bin,
            &[
                format!("--kubeconfig={kubeconfig}"),
                format!("--config={}", stages.display()),
                "--manage-all-nodes=false".into(),
                format!(
                    "--manage-nodes-with-annotation-selector={}={}",
                    FAKE_NODE_ANNOTATION.0, FAKE_NODE_ANNOTATION.1
                ),
                "--cidr=10.244.0.0/16".into(),
                // Fake nodes renew a Lease like kubelets: without one, the node lifecycle
                // controller finds their heartbeat stale after 40 s and marks their pods NotReady.
                "--node-lease-duration-seconds=40".into(),
                "--node-ip=10.0.0.1".into(),
                format!("--server-address=127.0.0.1:{kwok_port}"),
            ],
            self.dir.join("kwok.log"),
        )?;

        let listening = |port: u16| TcpStream::connect(("127.0.0.1", port)).is_ok();
        wait_until(
            "kube-controller-manager, kube-scheduler and kwok",
            Duration::from_secs(60),
            &mut [&mut kcm, &mut scheduler, &mut kwok],
            || listening(kcm_port) && listening(scheduler_port) && listening(kwok_port),
        )
    }
}

/// Creates a node kwok manages (Ready once kwok sees it) with room for 110 pods, carrying
/// `labels` besides the usual hostname/os/arch ones.
pub async fn create_fake_node(client: &Client, name: &str, labels: &[(&str, &str)]) -> Node {
    let mut node: Node = serde_json::from_value(serde_json::json!({
        "metadata": {
            "name": name,
            "annotations": { FAKE_NODE_ANNOTATION.0: FAKE_NODE_ANNOTATION.1 },
            "labels": {
                "type": "kwok",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
            },
        },
        "status": {
            "allocatable": { "cpu": "32", "memory": "256Gi", "pods": "110" },
            "capacity": { "cpu": "32", "memory": "256Gi", "pods": "110" },
        },
    }))
    .expect("node object");
    node.metadata
        .labels
        .get_or_insert_default()
        .extend(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Api::<Node>::all(client.clone())
        .create(&PostParams::default(), &node)
        .await
        .unwrap_or_else(|e| panic!("create fake node {name}: {e}"))
}
