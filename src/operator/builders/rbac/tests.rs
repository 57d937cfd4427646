use super::*;
use crate::crd::NodeMonitorSpec;
use crate::operator::builders::test_monitor;

#[test]
fn agent_roles_read_pods_node_stats_and_namespaces_only() {
    let roles = agent_cluster_roles();
    let names: Vec<_> = roles.iter().map(|r| r.name_any()).collect();
    assert_eq!(names, [AGENT_POD_READER, AGENT_NAMESPACE_READER]);
    let pods = roles[0].rules.as_ref().unwrap();
    assert_eq!(pods.len(), 2);
    assert_eq!(
        pods[0].resources.as_deref(),
        Some(&["pods".to_string()][..])
    );
    assert_eq!(pods[0].verbs, ["get", "list", "watch"]);
    // The kubelet's Summary API (container filesystems): get only.
    assert_eq!(
        pods[1].resources.as_deref(),
        Some(&["nodes/stats".to_string()][..])
    );
    assert_eq!(pods[1].verbs, ["get"]);
    let ns = roles[1].rules.as_ref().unwrap();
    assert_eq!(
        ns[0].resources.as_deref(),
        Some(&["namespaces".to_string()][..])
    );
    assert_eq!(ns[0].verbs, ["list", "watch"]);
}

#[test]
fn bindings_follow_enrichment_and_the_namespace_selector() {
    let nm = test_monitor("nm1", NodeMonitorSpec::default());
    assert_eq!(roles_needed(&nm), [AGENT_POD_READER]);
    let mut spec = NodeMonitorSpec {
        namespace_selector: Some(Default::default()),
        ..NodeMonitorSpec::default()
    };
    assert_eq!(
        roles_needed(&test_monitor("nm2", spec.clone())),
        [AGENT_POD_READER, AGENT_NAMESPACE_READER]
    );
    spec.pod_metadata.enabled = false;
    assert!(
        roles_needed(&test_monitor("nm3", spec)).is_empty(),
        "no token, no rights"
    );

    let binding = cluster_role_binding(&nm, AGENT_POD_READER);
    assert_eq!(
        binding.metadata.name.as_deref(),
        Some("fine-grained-monitor:monitoring:nm1")
    );
    assert_eq!(binding.role_ref.name, AGENT_POD_READER);
    assert_eq!(
        binding.metadata.annotations.as_ref().unwrap()["fgm.dev/owner"],
        "monitoring/nm1"
    );
    let ns_binding = cluster_role_binding(&nm, AGENT_NAMESPACE_READER);
    assert_eq!(
        ns_binding.metadata.name.as_deref(),
        Some("fine-grained-monitor:monitoring:nm1:namespaces")
    );
}

#[test]
fn no_name_steers_the_service_account_onto_an_existing_one() {
    for name in ["default", "builder", "deployer", "nm1"] {
        let nm = test_monitor(name, NodeMonitorSpec::default());
        let sa = service_account(&nm);
        let sa_name = sa.metadata.name.clone().unwrap();
        assert_eq!(sa_name, format!("fine-grained-monitor-{name}"));
        assert_eq!(sa.automount_service_account_token, Some(false));
        assert!(sa.metadata.owner_references.is_some());
        let subject = &cluster_role_binding(&nm, AGENT_POD_READER)
            .subjects
            .unwrap()[0];
        assert_eq!(subject.name, sa_name);
        assert_eq!(subject.namespace, sa.metadata.namespace);
    }
}

#[test]
fn operator_binds_the_agent_roles_but_holds_no_role_rights() {
    let held = operator_cluster_rules();
    let bind = held
        .iter()
        .find(|r| r.verbs == ["bind"])
        .expect("a bind rule");
    assert_eq!(
        bind.resources.as_deref(),
        Some(&["clusterroles".to_string()][..])
    );
    assert_eq!(
        bind.resource_names.as_deref(),
        Some(
            &[
                AGENT_POD_READER.to_string(),
                AGENT_NAMESPACE_READER.to_string()
            ][..]
        )
    );
    for r in &held {
        let resources = r.resources.clone().unwrap_or_default();
        assert!(
            !resources
                .iter()
                .any(|x| x == "clusterroles" || x == "roles")
                || r.verbs == ["bind"],
            "no create/patch/delete on roles: {r:?}"
        );
        assert!(
            !resources
                .iter()
                .any(|x| x == "namespaces" || x == "secrets"),
            "the operator reads no namespaces or secrets: {r:?}"
        );
        // Pods: only listed (the agents' addresses for their export reports),
        // never watched or fetched one by one.
        if resources.iter().any(|x| x == "pods") {
            assert_eq!(resources, ["pods"], "{r:?}");
            assert_eq!(r.verbs, ["list"], "{r:?}");
        }
        assert!(!r.verbs.iter().any(|v| v == "*" || v == "escalate"));
    }
}
