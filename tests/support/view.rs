//! `kubectl fgm view` as a child process and plain HTTP GETs to it: shared by the tests against
//! the control plane and the real node.

use std::io::{BufRead, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

/// A running `kubectl fgm view` and the `host:port` it printed; killed when dropped.
pub struct View {
    pub child: Child,
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
    let mut child = Command::new(bin)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["view", "--no-browser"])
        .args(args)
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
        .expect("the view prints its URL");
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
    View { child, addr }
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
