//! Running the shipped query scripts (examples/queries) against a bucket of
//! the test server: DuckDB's run.py and the Spark script.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{ACCESS_KEY, S3Server, SECRET_KEY};

/// The Python with DuckDB and its httpfs extension (target/py, or FGM_PYTHON).
pub fn python() -> PathBuf {
    let path = std::env::var_os("FGM_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/py/bin/python"));
    let ok = Command::new(&path)
        .args(["-c", "import duckdb, duckdb_extension_httpfs"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{} lacks duckdb and duckdb-extension-httpfs: run tools/setup.sh (or pip install -r \
         examples/queries/requirements.txt and set FGM_PYTHON)",
        path.display()
    );
    path
}

/// The examples/queries directory.
pub fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/queries")
}

/// Where a query runs: the server, bucket and prefix.
#[derive(Clone, Copy)]
pub struct Target<'a> {
    pub server: &'a S3Server,
    pub bucket: &'a str,
    pub prefix: &'a str,
}

impl Target<'_> {
    /// Runs `file` (a path, or a name under examples/queries/duckdb) with
    /// run.py over `from..to`; its rows as JSON.
    pub fn query(&self, file: impl AsRef<Path>, from: &str, to: &str) -> Vec<serde_json::Value> {
        rows(&self.run_py(file.as_ref(), from, to, &[]).0)
    }

    /// [`Self::query`]'s standard output and error, with `extra` arguments.
    pub fn run_py(&self, file: &Path, from: &str, to: &str, extra: &[&str]) -> (String, String) {
        let file = if file.is_absolute() {
            file.to_path_buf()
        } else {
            examples().join("duckdb").join(file)
        };
        let mut cmd = Command::new(python());
        cmd.arg(examples().join("run.py")).arg(&file).args(extra);
        self.run(&mut cmd, from, to, &file.display().to_string())
    }

    /// Runs a shipped query script against the bucket over `from..to` with
    /// the admin keys; its standard output and error. Fails naming `what`
    /// and the script's errors.
    pub fn run(&self, cmd: &mut Command, from: &str, to: &str, what: &str) -> (String, String) {
        let out = cmd
            .args([
                "--bucket",
                self.bucket,
                "--prefix",
                self.prefix,
                "--path-style",
            ])
            .args([
                "--endpoint",
                &self.server.endpoint,
                "--from",
                from,
                "--to",
                to,
            ])
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .output()
            .expect("run the query script");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{what}: {}\n{stderr}", out.status);
        (String::from_utf8_lossy(&out.stdout).into_owned(), stderr)
    }
}

/// JSON lines as values.
pub fn rows(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}
