use super::*;

const ID: &str = "3f2a8c1b9d4e5f60718293a4b5c6d7e8f9012345678901234567890abcdef012";

fn container(path: &str) -> ContainerRef {
    match classify(path) {
        Class::Container(c) => c,
        other => panic!("{path}: expected a container, got {other:?}"),
    }
}

#[test]
fn systemd_containerd_burstable_with_underscored_uid() {
    let c = container(&format!(
        "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1a2b3c4d_0000_4000_8000_000000000001.slice/cri-containerd-{ID}.scope"
    ));
    assert_eq!(c.full_id, ID);
    assert_eq!(c.short_id, &ID[..12]);
    assert_eq!(c.runtime, Some("containerd"));
    assert_eq!(
        c.pod_uid.as_deref(),
        Some("1a2b3c4d-0000-4000-8000-000000000001")
    );
    assert_eq!(c.qos_class, Some("Burstable"));
}

#[test]
fn systemd_guaranteed_crio_and_besteffort_docker() {
    let c = container(&format!(
        "kubepods.slice/kubepods-pod1a2b3c4d_0000_4000_8000_000000000002.slice/crio-{ID}.scope"
    ));
    assert_eq!((c.runtime, c.qos_class), (Some("crio"), Some("Guaranteed")));
    let c = container(&format!(
        "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-podaa_bb.slice/docker-{ID}.scope"
    ));
    assert_eq!(
        (c.runtime, c.qos_class, c.pod_uid.as_deref()),
        (Some("docker"), Some("BestEffort"), Some("aa-bb"))
    );
}

#[test]
fn cgroupfs_layouts() {
    let c = container(&format!(
        "kubepods/besteffort/pod1a2b3c4d-0000-4000-8000-000000000003/{ID}"
    ));
    assert_eq!((c.runtime, c.qos_class), (None, Some("BestEffort")));
    assert_eq!(
        c.pod_uid.as_deref(),
        Some("1a2b3c4d-0000-4000-8000-000000000003")
    );
    let c = container(&format!(
        "kubepods/pod1a2b3c4d-0000-4000-8000-000000000004/{ID}"
    ));
    assert_eq!(c.qos_class, Some("Guaranteed"));
    let c = container(&format!("kubepods/burstable/podabc/crio-{ID}"));
    assert_eq!((c.runtime, c.qos_class), (Some("crio"), Some("Burstable")));
    let c = container(&format!("docker/{ID}"));
    assert_eq!((c.runtime, c.pod_uid), (Some("docker"), None));
}

/// Every QoS class under custom kubelet `--cgroup-root`s, both drivers: the
/// layouts kind (`/kubelet`) and nested roots produce.
#[test]
fn any_kubelet_cgroup_root_and_driver() {
    let uid = "1a2b3c4d-0000-4000-8000-000000000005";
    let uid_ = uid.replace('-', "_");
    let cases = [
        // cgroupfs, kind's --cgroup-root=/kubelet
        (
            format!("kubelet/kubepods/burstable/pod{uid}/{ID}"),
            "Burstable",
        ),
        (
            format!("kubelet/kubepods/besteffort/pod{uid}/{ID}"),
            "BestEffort",
        ),
        (format!("kubelet/kubepods/pod{uid}/{ID}"), "Guaranteed"),
        // cgroupfs, a deeper root
        (format!("a/b/kubepods/burstable/pod{uid}/{ID}"), "Burstable"),
        // systemd, --cgroup-root=/kubelet.slice
        (
            format!(
                "kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-burstable.slice/kubelet-kubepods-burstable-pod{uid_}.slice/cri-containerd-{ID}.scope"
            ),
            "Burstable",
        ),
        (
            format!(
                "kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod{uid_}.slice/crio-{ID}.scope"
            ),
            "BestEffort",
        ),
        (
            format!(
                "kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-pod{uid_}.slice/cri-containerd-{ID}.scope"
            ),
            "Guaranteed",
        ),
        // systemd, two levels of root slices
        (
            format!(
                "a.slice/a-b.slice/a-b-kubepods.slice/a-b-kubepods-burstable.slice/a-b-kubepods-burstable-pod{uid_}.slice/docker-{ID}.scope"
            ),
            "Burstable",
        ),
    ];
    for (path, qos) in cases {
        let c = container(&path);
        assert_eq!(c.pod_uid.as_deref(), Some(uid), "{path}");
        assert_eq!(c.qos_class, Some(qos), "{path}");
        assert_eq!(c.full_id, ID, "{path}");
    }
    // A pod slice outside a kubepods tree is not a pod.
    let c = container(&format!(
        "other.slice/other-burstable.slice/other-burstable-pod{uid_}.slice/cri-containerd-{ID}.scope"
    ));
    assert_eq!((c.pod_uid, c.qos_class), (None, None));
    // A cgroupfs pod directory outside kubepods: the UID, but no class.
    let c = container(&format!("custom/pod{uid}/{ID}"));
    assert_eq!((c.pod_uid.as_deref(), c.qos_class), (Some(uid), None));
}

#[test]
fn not_containers() {
    assert_eq!(
        classify(&format!(
            "kubepods.slice/kubepods-pod12.slice/crio-conmon-{ID}.scope"
        )),
        Class::Skip
    );
    for path in [
        "kubepods.slice",
        "kubepods.slice/kubepods-burstable.slice",
        "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod12_34.slice",
        "system.slice/containerd.service",
        "user.slice/user-1000.slice/session-1.scope",
        // Long hex names outside a pod belong to other tools.
        "process_api/fc7e1c373546cccae72236acf645db2b",
        "kubepods/burstable/pod12/not-an-id",
        "",
    ] {
        assert_eq!(classify(path), Class::Other, "{path}");
    }
}

#[test]
fn plain_cgroups_are_named_by_path_with_a_stable_short_id() {
    let c = plain_container("user.slice/user-1000.slice/session-1.scope");
    assert_eq!(c.full_id, "/user.slice/user-1000.slice/session-1.scope");
    assert_eq!(c.short_id.len(), 12);
    assert!(c.short_id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(
        c.short_id,
        short_hash("/user.slice/user-1000.slice/session-1.scope")
    );
    assert_ne!(c.short_id, plain_container("a").short_id);
    assert_eq!(plain_container("").full_id, "/");
}

#[test]
fn walk_finds_containers_and_local_leaves() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let pod = root.join("kubepods/burstable/pod12");
    std::fs::create_dir_all(pod.join(ID)).unwrap();
    std::fs::create_dir_all(root.join("kubepods/burstable/pod12").join(ID).join("sub")).unwrap();
    std::fs::create_dir_all(root.join("system.slice/busy.service")).unwrap();
    std::fs::create_dir_all(root.join("system.slice/idle.service")).unwrap();
    std::fs::write(root.join("system.slice/busy.service/cgroup.procs"), "42\n").unwrap();
    std::fs::write(root.join("system.slice/idle.service/cgroup.procs"), "").unwrap();

    let nobody = |_: &str| false;
    let k8s = discover(&[root], DiscoveryMode::Kubernetes, &nobody);
    assert_eq!(k8s.len(), 1, "{k8s:?}");
    let key = format!("kubepods/burstable/pod12/{ID}");
    assert_eq!(k8s[&key].full_id, ID, "not descending into a container");

    let local = discover(&[root], DiscoveryMode::Local, &nobody);
    let keys: Vec<&str> = local.keys().map(String::as_str).collect();
    assert_eq!(keys, vec![key.as_str(), "system.slice/busy.service"]);
    assert_eq!(
        local["system.slice/busy.service"].full_id,
        "/system.slice/busy.service"
    );

    // A leaf the sampler already saw with processes is kept without reading
    // its cgroup.procs again (here the file says empty, the callback wins).
    let known = |path: &str| path == "system.slice/idle.service";
    let local = discover(&[root], DiscoveryMode::Local, &known);
    assert!(local.contains_key("system.slice/idle.service"), "{local:?}");
    // The callback only speaks for leaves: a parent with children is never a container.
    let parent = |path: &str| path == "system.slice";
    assert!(!discover(&[root], DiscoveryMode::Local, &parent).contains_key("system.slice"));
}

#[test]
fn leaves_are_found_at_every_depth_and_in_every_hierarchy() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for (root, leaf) in [(&a, "x.slice/y.slice/deep.scope"), (&b, "only-in-b.scope")] {
        std::fs::create_dir_all(root.join(leaf)).unwrap();
        std::fs::write(root.join(leaf).join("cgroup.procs"), "7\n").unwrap();
        // A control file next to the cgroups, as cgroupfs has dozens of.
        std::fs::write(root.join("cgroup.procs"), "1\n").unwrap();
    }
    std::fs::create_dir_all(a.join("x.slice/empty.scope")).unwrap();
    let found = discover(&[&a, &b], DiscoveryMode::Local, &|_| false);
    let keys: Vec<&str> = found.keys().map(String::as_str).collect();
    assert_eq!(keys, vec!["only-in-b.scope", "x.slice/y.slice/deep.scope"]);
}

#[test]
fn sandbox_is_all_pause_processes() {
    let dir = tempfile::tempdir().unwrap();
    let cg = dir.path().join("cg");
    let proc_root = dir.path().join("proc");
    std::fs::create_dir_all(&cg).unwrap();
    for (pid, comm) in [("10", "pause\n"), ("11", "nginx\n")] {
        std::fs::create_dir_all(proc_root.join(pid)).unwrap();
        std::fs::write(proc_root.join(pid).join("comm"), comm).unwrap();
    }
    std::fs::write(cg.join("cgroup.procs"), "10\n").unwrap();
    assert_eq!(is_sandbox(&cg, &proc_root), Some(true));
    std::fs::write(cg.join("cgroup.procs"), "10\n11\n").unwrap();
    assert_eq!(is_sandbox(&cg, &proc_root), Some(false));
    std::fs::write(cg.join("cgroup.procs"), "").unwrap();
    assert_eq!(is_sandbox(&cg, &proc_root), None);
    std::fs::write(cg.join("cgroup.procs"), "99\n").unwrap();
    assert_eq!(is_sandbox(&cg, &proc_root), None, "pid not visible");
}

#[test]
fn pids_found_from_proc_cgroup_files_by_leaf() {
    let dir = tempfile::tempdir().unwrap();
    let proc_root = dir.path();
    let leaf = format!("cri-containerd-{ID}.scope");
    for (pid, cgroup, comm) in [
        ("7", format!("0::/../kubepods-pod1.slice/{leaf}\n"), "pause"),
        ("8", "0::/system.slice/x.service\n".to_string(), "x"),
        (
            "9",
            format!("4:memory:/kubepods/pod1/{ID}\n1:cpu:/kubepods/pod1/{ID}\n"),
            "app",
        ),
    ] {
        std::fs::create_dir_all(proc_root.join(pid)).unwrap();
        std::fs::write(proc_root.join(pid).join("cgroup"), cgroup).unwrap();
        std::fs::write(proc_root.join(pid).join("comm"), format!("{comm}\n")).unwrap();
    }
    std::fs::create_dir_all(proc_root.join("self")).unwrap();
    let found = pids_by_leaf(proc_root, &[leaf.as_str(), ID]);
    assert_eq!(found[&leaf], vec!["7".to_string()]);
    assert_eq!(found[ID], vec!["9".to_string()]);
    assert_eq!(sandbox_from_pids(&["7"], proc_root), Some(true));
    assert_eq!(sandbox_from_pids(&["9"], proc_root), Some(false));
}
