//! `CAP_SYS_PTRACE` for reading other users' `smaps_rollup` (PSS), from the
//! binary's file capability (`cap_sys_ptrace+p`, set by the image assembly).
//!
//! The agent runs as 65532; a capability listed in a non-root container's
//! `securityContext` only reaches its bounding set, and an exec drops it from
//! the permitted set. A file capability is kept across the exec (when the
//! bounding set has it and `allowPrivilegeEscalation` is true), but only in
//! the permitted set: nothing uses it until the process raises it into its
//! effective set, which [`raise_ptrace`] does when processes are on. It runs
//! before the async runtime starts its threads, since capabilities belong to
//! each thread and new threads copy their creator's. Otherwise
//! [`drop_permitted`] empties the permitted set, so the operator and an agent
//! with processes off hold nothing.

use rustix::thread::{CapabilitySet, CapabilitySets, capabilities, set_capabilities};

/// What [`raise_ptrace`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ptrace {
    /// Effective from now on (this thread and the threads it starts).
    Raised,
    /// Not permitted: the binary has no file capability, or the container's
    /// bounding set lacks it, or `no_new_privs` kept it from the exec.
    NotPermitted,
}

/// Raises `CAP_SYS_PTRACE` into the effective set if it is permitted, and
/// drops every other permitted capability.
pub fn raise_ptrace() -> std::io::Result<Ptrace> {
    let current = capabilities(None)?;
    if !current.permitted.contains(CapabilitySet::SYS_PTRACE) {
        drop_permitted()?;
        return Ok(Ptrace::NotPermitted);
    }
    let only = CapabilitySet::SYS_PTRACE;
    set_capabilities(
        None,
        CapabilitySets {
            effective: only,
            permitted: only,
            inheritable: CapabilitySet::empty(),
        },
    )?;
    // Gaining a file capability at exec makes the process non-dumpable, which
    // gives its /proc/self to root: the agent could no longer count its own
    // descriptors. Nothing else runs as the agent's user in its container.
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::Dumpable)?;
    Ok(Ptrace::Raised)
}

/// Empties the permitted (and effective) set: a capability the binary's file
/// capability granted is gone for good.
pub fn drop_permitted() -> std::io::Result<()> {
    let current = capabilities(None)?;
    if current.permitted.is_empty() && current.effective.is_empty() {
        return Ok(());
    }
    set_capabilities(
        None,
        CapabilitySets {
            effective: CapabilitySet::empty(),
            permitted: CapabilitySet::empty(),
            inheritable: current.inheritable,
        },
    )?;
    Ok(())
}

/// At start-up, before any thread: raises `CAP_SYS_PTRACE` when processes
/// are on, else drops what a file capability granted. Root is left as it is
/// (`local` mode run by root reads everything already).
pub fn settle(processes: bool) -> std::io::Result<Option<Ptrace>> {
    if rustix::process::geteuid().is_root() {
        return Ok(None);
    }
    if processes {
        raise_ptrace().map(Some)
    } else {
        drop_permitted().map(|()| None)
    }
}

/// Whether this thread's effective set has `CAP_SYS_PTRACE`.
pub fn ptrace_effective() -> bool {
    capabilities(None).is_ok_and(|c| c.effective.contains(CapabilitySet::SYS_PTRACE))
}
