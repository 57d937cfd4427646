//! Certificates, service-account key and kubeconfigs for the test control plane, made with the
//! `openssl` command (P-256 keys: fast to generate, accepted by the apiserver and by rustls).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Paths of everything [`generate`] writes into a directory.
pub struct Pki {
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    pub serving_cert: PathBuf,
    pub serving_key: PathBuf,
    pub admin_cert: PathBuf,
    pub admin_key: PathBuf,
    pub sa_key: PathBuf,
    pub sa_pub: PathBuf,
    /// The apiserver's client certificate towards kubelets (`system:masters`).
    pub kubelet_client_cert: PathBuf,
    pub kubelet_client_key: PathBuf,
}

/// The addresses a pod or the real node reaches the apiserver by, besides loopback: the
/// node network's host side (tests/support/node) and the `kubernetes` Service's cluster IP.
pub const EXTRA_SERVING_IPS: [&str; 2] = ["10.123.0.1", "10.96.0.1"];

/// Runs `openssl` with whitespace-separated `args` (file names here never contain spaces).
fn openssl(dir: &Path, args: &str) -> Result<(), String> {
    let out = Command::new("openssl")
        .args(args.split_whitespace())
        .current_dir(dir)
        .output()
        .map_err(|e| format!("cannot run openssl (`apt-get install openssl`): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "openssl {args} failed in {} ({}): {}",
            dir.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// A key and a certificate signed by the CA in `dir`, with the given subject and extensions.
fn leaf(dir: &Path, name: &str, subject: &str, extensions: &str) -> Result<(), String> {
    let ext_file = format!("{name}.ext");
    std::fs::write(dir.join(&ext_file), extensions)
        .map_err(|e| format!("cannot write {}: {e}", dir.join(&ext_file).display()))?;
    let (key, csr, crt) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.crt"),
    );
    openssl(
        dir,
        &format!(
            "req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout {key} -out {csr} -subj {subject}"
        ),
    )?;
    openssl(
        dir,
        &format!(
            "x509 -req -in {csr} -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -out {crt} -extfile {ext_file}"
        ),
    )
}

/// Writes a CA, the apiserver's serving certificate (127.0.0.1, the node network's host side,
/// the `kubernetes` Service), an admin client certificate in `system:masters`, the apiserver's
/// kubelet client certificate, and the service-account signing key pair into `dir`.
pub fn generate(dir: &Path) -> Result<Pki, String> {
    openssl(
        dir,
        "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key \
         -out ca.crt -days 3650 -subj /CN=fgm-envtest-ca \
         -addext basicConstraints=critical,CA:TRUE \
         -addext keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
    )?;
    apiserver_serving(dir)?;
    leaf(
        dir,
        "admin",
        "/O=system:masters/CN=fgm-envtest-admin",
        "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature,keyEncipherment\n",
    )?;
    client_cert(
        dir,
        "apiserver-kubelet-client",
        "/O=system:masters/CN=kube-apiserver-kubelet-client",
    )?;
    openssl(
        dir,
        "genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out sa.key",
    )?;
    openssl(dir, "pkey -in sa.key -pubout -out sa.pub")?;
    Ok(Pki {
        ca_cert: dir.join("ca.crt"),
        ca_key: dir.join("ca.key"),
        serving_cert: dir.join("apiserver.crt"),
        serving_key: dir.join("apiserver.key"),
        admin_cert: dir.join("admin.crt"),
        admin_key: dir.join("admin.key"),
        sa_key: dir.join("sa.key"),
        sa_pub: dir.join("sa.pub"),
        kubelet_client_cert: dir.join("apiserver-kubelet-client.crt"),
        kubelet_client_key: dir.join("apiserver-kubelet-client.key"),
    })
}

/// The apiserver's serving certificate `apiserver.crt` with a new key `apiserver.key`, signed by
/// the CA in `dir` (at start, and again for a restart under a new key).
pub fn apiserver_serving(dir: &Path) -> Result<(), String> {
    leaf(
        dir,
        "apiserver",
        "/CN=kube-apiserver",
        &format!(
            "subjectAltName=IP:127.0.0.1,IP:{},IP:{},DNS:localhost,DNS:kubernetes,\
             DNS:kubernetes.default,DNS:kubernetes.default.svc,\
             DNS:kubernetes.default.svc.cluster.local\n\
             extendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n\
             keyUsage=critical,digitalSignature,keyEncipherment\n",
            EXTRA_SERVING_IPS[0], EXTRA_SERVING_IPS[1]
        ),
    )
}

/// A client certificate `<name>.crt` / `<name>.key` for `subject` (`/O=group/CN=user`), signed by
/// the CA in `dir`.
pub fn client_cert(dir: &Path, name: &str, subject: &str) -> Result<(PathBuf, PathBuf), String> {
    leaf(
        dir,
        name,
        subject,
        "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature,keyEncipherment\n",
    )?;
    Ok((
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    ))
}

/// A serving certificate `<name>.crt` / `<name>.key` for the IP addresses `ips`, signed by the CA
/// in `dir`.
pub fn serving_cert(
    dir: &Path,
    name: &str,
    subject: &str,
    ips: &[&str],
) -> Result<(PathBuf, PathBuf), String> {
    let sans: Vec<String> = ips.iter().map(|ip| format!("IP:{ip}")).collect();
    leaf(
        dir,
        name,
        subject,
        &format!(
            "subjectAltName={}\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n\
             keyUsage=critical,digitalSignature,keyEncipherment\n",
            sans.join(",")
        ),
    )?;
    Ok((
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    ))
}

/// The user entry of a kubeconfig for a client certificate.
pub fn cert_user(cert: &Path, key: &Path) -> String {
    format!(
        "    client-certificate: {}\n    client-key: {}",
        cert.display(),
        key.display()
    )
}

/// A kubeconfig for `server` that trusts the CA in `pki`; `user` is the YAML body of the
/// user entry (client certificate paths or a token).
pub fn kubeconfig(server: &str, pki: &Pki, user: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: envtest\n  cluster:\n    \
         server: {server}\n    certificate-authority: {ca}\nusers:\n- name: envtest\n  user:\n\
         {user}\ncontexts:\n- name: envtest\n  context:\n    cluster: envtest\n    \
         user: envtest\n    namespace: default\ncurrent-context: envtest\n",
        ca = pki.ca_cert.display(),
    )
}

/// The user entry of the admin kubeconfig (client certificate in `system:masters`).
pub fn admin_user(pki: &Pki) -> String {
    format!(
        "    client-certificate: {}\n    client-key: {}",
        pki.admin_cert.display(),
        pki.admin_key.display()
    )
}
