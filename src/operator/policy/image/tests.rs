use super::*;

fn repo(image: &str) -> String {
    ImageRef::parse("img", image).unwrap().repository
}

#[test]
fn repositories_are_spelled_out() {
    assert_eq!(repo("nginx"), "docker.io/library/nginx");
    assert_eq!(repo("nginx:1.27"), "docker.io/library/nginx");
    assert_eq!(repo("bitnami/nginx:1"), "docker.io/bitnami/nginx");
    assert_eq!(
        repo("index.docker.io/library/nginx"),
        "docker.io/library/nginx"
    );
    assert_eq!(
        repo("ghcr.io/fine-grained-monitor/fine-grained-monitor:0.1.0"),
        "ghcr.io/fine-grained-monitor/fine-grained-monitor"
    );
    assert_eq!(repo("localhost:5000/fgm:dev"), "localhost:5000/fgm");
    assert_eq!(repo("registry.local:443/a/b/c"), "registry.local:443/a/b/c");
    let d = ImageRef::parse("img", &format!("r.io/a@sha256:{}", "ab".repeat(32))).unwrap();
    assert_eq!(d.repository, "r.io/a");
    assert!(d.digest.unwrap().starts_with("sha256:"));
    let both = ImageRef::parse("img", &format!("r.io/a:v1@sha256:{}", "0".repeat(64))).unwrap();
    assert_eq!(both.tag.as_deref(), Some("v1"));
}

#[test]
fn malformed_images_name_the_problem() {
    for bad in [
        "",
        " nginx",
        "Nginx",
        "r.io//a",
        "r.io/a:",
        "r.io/a@sha256:xyz",
        "r.io/a:tag with space",
        "r.io/-a",
    ] {
        let e = ImageRef::parse("spec.image", bad).unwrap_err();
        assert!(e.to_string().contains("spec.image"), "{bad:?}: {e}");
    }
}

#[test]
fn without_allowed_repositories_only_the_default_runs() {
    let default = "ghcr.io/fine-grained-monitor/fine-grained-monitor:0.1.0";
    assert_eq!(choose(None, default, &[]).unwrap(), default);
    assert_eq!(choose(Some(default), default, &[]).unwrap(), default);
    let e = choose(Some("evil.io/root:latest"), default, &[]).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("evil.io/root:latest") && msg.contains("no image but its default"),
        "{msg}"
    );
    // Another tag of the default repository is an override too.
    assert!(
        choose(
            Some("ghcr.io/fine-grained-monitor/fine-grained-monitor:latest"),
            default,
            &[]
        )
        .is_err()
    );
}

#[test]
fn allowed_repositories_exact_and_below() {
    let allowed: Vec<AllowedRepository> = [
        "registry.example.com/fgm",
        "mirror.example.com/team/*",
        "nginx",
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect();
    let ok = |i: &str| choose(Some(i), "d:1", &allowed).is_ok();
    assert!(ok("registry.example.com/fgm:dev"));
    assert!(ok(
        "registry.example.com/fgm@sha256:0123456789abcdef0123456789abcdef"
    ));
    assert!(ok("mirror.example.com/team/fgm:1"));
    assert!(ok("mirror.example.com/team/a/b:1"));
    assert!(ok("docker.io/library/nginx:1"));
    assert!(!ok("registry.example.com/fgm-evil:dev"));
    assert!(!ok("registry.example.com/fgm/sub:dev"));
    assert!(!ok("mirror.example.com/team:1"));
    assert!(!ok("mirror.example.com/teamx/fgm:1"));
    assert!(!ok("evil.example.com/registry.example.com/fgm:1"));
    let e = choose(Some("evil.io/x"), "d:1", &allowed)
        .unwrap_err()
        .to_string();
    assert!(e.contains("mirror.example.com/team/*"), "{e}");
}

#[test]
fn allowed_entries_are_repositories() {
    assert!(
        "registry.example.com/fgm:1"
            .parse::<AllowedRepository>()
            .is_err()
    );
    assert!("Registry".parse::<AllowedRepository>().is_err());
    assert_eq!(
        "nginx".parse::<AllowedRepository>().unwrap(),
        AllowedRepository::Exact("docker.io/library/nginx".into())
    );
    assert_eq!(
        "r.io/team/*"
            .parse::<AllowedRepository>()
            .unwrap()
            .to_string(),
        "r.io/team/*"
    );
    let registry: AllowedRepository = "registry.local:5000/*".parse().unwrap();
    assert!(registry.allows("registry.local:5000/fgm"));
    assert!(!registry.allows("registry.local:50001/fgm"));
    // A single name is a Docker Hub repository, not a registry.
    assert_eq!(
        "team/*".parse::<AllowedRepository>().unwrap().to_string(),
        "docker.io/team/*"
    );
}
