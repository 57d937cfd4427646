//! Where the API connection comes from: an explicit `--kubeconfig` (or
//! `--kube-context`) first, then the in-cluster service account, then the
//! default kubeconfig (`$KUBECONFIG`, `~/.kube/config`) so the agent also runs
//! from a laptop. Every failure is classified for one clear log line.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};
use kube::{Client, Config};

use super::health::{Cause, Unavailable, source_chain};

/// How long a connection attempt may take before the API counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What to connect with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientSource {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
}

/// A client and a description of where its config came from (for the log).
pub struct Connected {
    pub client: Client,
    pub origin: String,
}

/// Builds a client; never touches the network (the first request tells whether it works).
pub async fn connect(source: &ClientSource) -> Result<Connected, Unavailable> {
    let (mut config, origin) = load_config(source).await?;
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    let origin = format!("{origin}, API server {}", config.cluster_url);
    let client = Client::try_from(config).map_err(|e| {
        Unavailable::new(
            Cause::BadKubeconfig,
            format!("cannot build a client from {origin}: {}", source_chain(&e)),
        )
    })?;
    Ok(Connected { client, origin })
}

pub async fn load_config(source: &ClientSource) -> Result<(Config, String), Unavailable> {
    let options = KubeConfigOptions {
        context: source.context.clone(),
        ..Default::default()
    };
    if let Some(path) = &source.kubeconfig {
        let kubeconfig =
            Kubeconfig::read_from(path).map_err(|e| classify_kubeconfig(Some(path), &e))?;
        let config = Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(|e| classify_kubeconfig(Some(path), &e))?;
        return Ok((config, describe(Some(path), &options)));
    }
    if source.context.is_none() && std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() {
        let config = Config::incluster().map_err(|e| {
            Unavailable::new(
                Cause::NotInCluster,
                format!("in-cluster service account unusable: {}", source_chain(&e)),
            )
        })?;
        return Ok((config, "in-cluster service account".to_string()));
    }
    let config = Config::from_kubeconfig(&options)
        .await
        .map_err(|e| classify_kubeconfig(None, &e))?;
    Ok((config, describe(None, &options)))
}

fn describe(path: Option<&Path>, options: &KubeConfigOptions) -> String {
    let file = match path {
        Some(p) => format!("kubeconfig {}", p.display()),
        None => "default kubeconfig".to_string(),
    };
    match &options.context {
        Some(c) => format!("{file}, context {c}"),
        None => format!("{file}, current context"),
    }
}

/// Classifies a kubeconfig failure; `path` is the explicit file, `None` for the default one.
pub fn classify_kubeconfig(path: Option<&Path>, err: &KubeconfigError) -> Unavailable {
    let file = match path {
        Some(p) => p.display().to_string(),
        None => "the default kubeconfig ($KUBECONFIG, ~/.kube/config)".to_string(),
    };
    match err {
        // No explicit file and none at the default places: simply not in a cluster.
        KubeconfigError::FindPath => Unavailable::new(
            Cause::NotInCluster,
            "KUBERNETES_SERVICE_HOST is unset and there is no kubeconfig ($KUBECONFIG, ~/.kube/config)",
        ),
        KubeconfigError::ReadConfig(io, _)
            if path.is_none() && io.kind() == std::io::ErrorKind::NotFound =>
        {
            Unavailable::new(
                Cause::NotInCluster,
                format!("KUBERNETES_SERVICE_HOST is unset and {file} does not exist"),
            )
        }
        KubeconfigError::LoadContext(name) => Unavailable::new(
            Cause::UnknownContext,
            format!("context {name:?} is not in {file}"),
        ),
        KubeconfigError::CurrentContextNotSet => Unavailable::new(
            Cause::UnknownContext,
            format!("{file} sets no current-context (pass --kube-context)"),
        ),
        other => Unavailable::new(
            Cause::BadKubeconfig,
            format!("{file}: {}", source_chain(other)),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn kubeconfig(current: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        write!(
            f,
            "apiVersion: v1\nkind: Config\ncurrent-context: {current}\n\
             clusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\n\
             contexts:\n- name: ctx\n  context:\n    cluster: c\n    user: u\n\
             users:\n- name: u\n  user:\n    token: t\n"
        )
        .unwrap();
        f
    }

    async fn fails(source: ClientSource) -> Unavailable {
        match connect(&source).await {
            Ok(c) => panic!("expected a failure, connected to {}", c.origin),
            Err(u) => u,
        }
    }

    #[tokio::test]
    async fn explicit_kubeconfig_failures_name_file_and_cause() {
        let missing = fails(ClientSource {
            kubeconfig: Some("/nonexistent/kubeconfig".into()),
            context: None,
        })
        .await;
        assert_eq!(missing.cause, Cause::BadKubeconfig);
        assert!(
            missing.to_string().contains("/nonexistent/kubeconfig"),
            "{missing}"
        );

        let mut garbage = tempfile::NamedTempFile::new().unwrap();
        write!(garbage, ": : not yaml [").unwrap();
        let bad = fails(ClientSource {
            kubeconfig: Some(garbage.path().into()),
            context: None,
        })
        .await;
        assert_eq!(bad.cause, Cause::BadKubeconfig, "{bad}");

        let file = kubeconfig("ctx");
        let unknown = fails(ClientSource {
            kubeconfig: Some(file.path().into()),
            context: Some("nope".into()),
        })
        .await;
        assert_eq!(unknown.cause, Cause::UnknownContext, "{unknown}");
        assert!(unknown.to_string().contains("\"nope\""), "{unknown}");

        let dangling = kubeconfig("gone");
        let current = fails(ClientSource {
            kubeconfig: Some(dangling.path().into()),
            context: None,
        })
        .await;
        assert_eq!(current.cause, Cause::UnknownContext, "{current}");
    }

    #[tokio::test]
    async fn a_good_kubeconfig_connects_without_network() {
        let file = kubeconfig("ctx");
        let ok = connect(&ClientSource {
            kubeconfig: Some(file.path().into()),
            context: None,
        })
        .await
        .map_err(|u| u.to_string())
        .unwrap();
        assert!(ok.origin.contains("https://127.0.0.1:1"), "{}", ok.origin);
    }

    #[test]
    fn no_default_kubeconfig_means_not_in_a_cluster() {
        let u = classify_kubeconfig(None, &KubeconfigError::FindPath);
        assert_eq!(u.cause, Cause::NotInCluster);
        assert!(
            u.to_string()
                .starts_with("not in a cluster and no kubeconfig"),
            "{u}"
        );
    }
}
