//! A node's viewer the way a user reaches it: the README's `kubectl port-forward` block, then a
//! real Chromium (tests/browser/check-node-viewer.mjs) searching a pod and charting its CPU.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::readme;
use crate::support::node::{NODE_NAME, World};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `kubectl port-forward` as the README's "Reach a node's viewer" block runs it (its node name
/// and local port replaced by the test's), until the returned child's group is killed.
fn port_forward(world: &World) -> (Child, u16) {
    let block = readme::blocks("Reach a node's viewer")
        .into_iter()
        .find(|b| b.contains("port-forward"))
        .expect("README shows how to port-forward");
    let port = crate::support::process::free_port().expect("free port");
    let script = block
        .replace("NODE=worker-1", &format!("NODE={NODE_NAME}"))
        .replace("8050:8050", &format!("{port}:8050"));
    assert_ne!(
        script, block,
        "the README block names NODE=worker-1 and 8050:8050"
    );
    let path = format!(
        "{}:{}",
        crate::support::bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut child = Command::new("bash")
        .args(["-c", &script])
        .env("PATH", path)
        .env("KUBECONFIG", &world.cp.kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so kubectl (bash's child) is killed with it.
        .process_group(0)
        .spawn()
        .expect("start the README's port-forward");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(line) if line.contains("Forwarding from") => (child, port),
        other => {
            kill_group(&mut child);
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            panic!("port-forward: {other:?} {err}\n{}", world.logs())
        }
    }
}

fn kill_group(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", "--", &format!("-{}", child.id())])
        .status();
    let _ = child.wait();
}

/// Port-forwards to the node's viewer and charts `pod` in Chromium; returns the screenshot.
pub fn chart_in_chromium(world: &World, pod: &str, screenshot: PathBuf) -> PathBuf {
    let browser = repo().join("tests/browser");
    assert!(
        browser.join("node_modules/playwright-core").is_dir(),
        "playwright-core missing: `npm ci --prefix tests/browser` (`make setup` runs it)"
    );
    let (mut forward, port) = port_forward(world);
    let out = Command::new("node")
        .arg(browser.join("check-node-viewer.mjs"))
        .env("FGM_URL", format!("http://127.0.0.1:{port}/"))
        .env("FGM_SEARCH", pod)
        .env("FGM_POD", pod)
        .env("FGM_SCREENSHOT", &screenshot)
        .current_dir(&browser)
        .output()
        .expect("run node (Node.js; `make test` installs it)");
    kill_group(&mut forward);
    assert!(
        out.status.success(),
        "browser check failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprint!("{}", String::from_utf8_lossy(&out.stdout));
    assert!(
        screenshot.is_file(),
        "screenshot kept at {}",
        screenshot.display()
    );
    screenshot
}
