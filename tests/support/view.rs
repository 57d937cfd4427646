//! `kubectl fgm view` (and `open`) as a child process and plain HTTP GETs to it, and the
//! plugin's one-shot commands and MCP client: shared by the tests against the control plane and
//! the real nodes.

use std::io::{BufRead, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

/// A running `kubectl fgm view` (or `open`), the URL it printed and its `host:port`; killed
/// when dropped.
pub struct View {
    pub child: Child,
    pub url: String,
    pub addr: String,
}

impl Drop for View {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `bin view --no-browser <args>` with `kubeconfig` and waits for its URL. With
/// `keep_reading`, what it prints next is read as a terminal would; without, its stdout is
/// closed (as `kubectl fgm view | head -1` does).
pub fn start(bin: &str, kubeconfig: &Path, args: &[&str], keep_reading: bool) -> View {
    let mut command = vec!["view", "--no-browser"];
    command.extend_from_slice(args);
    start_command(bin, kubeconfig, &command, keep_reading)
}

/// Starts `bin <command...>` (`view` or `open`, with `--no-browser`) and waits for its URL.
pub fn start_command(bin: &str, kubeconfig: &Path, command: &[&str], keep_reading: bool) -> View {
    let mut child = Command::new(bin)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(command)
        .env_remove("KUBECONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start kubectl-fgm view");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = std::io::BufReader::new(stdout).lines();
    let url = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.starts_with("http://127.0.0.1:"))
        .expect("the command prints its URL");
    if keep_reading {
        std::thread::spawn(move || lines.for_each(drop));
    } else {
        drop(lines);
    }
    let addr = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .expect("host:port")
        .to_string();
    View { child, url, addr }
}

impl View {
    /// GET `path`: the status code and the body as JSON (`null` when it is not JSON).
    pub fn get(&self, path: &str) -> (u16, Value) {
        let addr = &self.addr;
        let mut stream = std::net::TcpStream::connect(addr).expect("connect to the view");
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .expect("request");
        let mut raw = String::new();
        stream.read_to_string(&mut raw).expect("answer");
        let code = raw
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = raw
            .split_once("\r\n\r\n")
            .map(|(_, b)| b)
            .unwrap_or_default();
        (code, serde_json::from_str(body).unwrap_or(Value::Null))
    }
}

/// The plugin's binary (integration tests and benchmarks are told where cargo built it; the
/// example that shares this module never runs it).
pub const BIN: &str = match option_env!("CARGO_BIN_EXE_kubectl-fgm") {
    Some(path) => path,
    None => "kubectl-fgm",
};

/// `kubectl fgm <args>` with `kubeconfig`, run to its end.
pub fn run(kubeconfig: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .env_remove("KUBECONFIG")
        .output()
        .expect("run kubectl-fgm")
}

/// A command's JSON output, or a failure naming `what` with what it printed.
pub fn json_of(what: &str, out: &std::process::Output) -> Value {
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{what}: {e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// The Python with the official `mcp` package (target/py, or FGM_PYTHON).
pub fn mcp_python() -> std::path::PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = std::env::var_os("FGM_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| repo.join("target/py/bin/python"));
    let ok = Command::new(&path)
        .args(["-c", "import mcp.client.stdio"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{} lacks the mcp package: run tools/setup.sh",
        path.display()
    );
    path
}

/// examples/mcp/call.py against the stdio server `server` (a command line): `tool` called
/// with no arguments, or the tools listed when `None`.
pub fn mcp_call(server: &str, tool: Option<&str>) -> std::process::Output {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    Command::new(mcp_python())
        .arg(repo.join("examples/mcp/call.py"))
        .args(["--stdio", server])
        .args(tool)
        .output()
        .expect("python runs")
}
