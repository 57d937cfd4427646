//! A cgroup v2 tree in a temporary directory shaped like the kubelet's
//! (systemd driver, containerd), with every file the agent reads. Values are
//! derived from (container, generation) so a test can bump them between
//! cycles and still know what each read must have seen.

use std::path::{Path, PathBuf};

/// One container of the fixture.
#[derive(Debug, Clone)]
pub struct FixtureContainer {
    pub full_id: String,
    pub short_id: String,
    pub pod_uid: String,
    /// Relative to the root, no leading slash.
    pub cgroup_path: String,
}

pub struct CgroupFixture {
    pub root: PathBuf,
    pub containers: Vec<FixtureContainer>,
}

fn write_atomic(path: &Path, content: &str) {
    let tmp = path.with_extension("fgm-tmp");
    std::fs::write(&tmp, content).unwrap_or_else(|e| panic!("writing {}: {e}", tmp.display()));
    std::fs::rename(&tmp, path).unwrap_or_else(|e| panic!("renaming {}: {e}", tmp.display()));
}

impl CgroupFixture {
    /// `count` burstable containers under `root` (created if missing).
    pub fn create(root: &Path, count: usize) -> Self {
        std::fs::create_dir_all(root).unwrap_or_else(|e| panic!("{}: {e}", root.display()));
        write_atomic(
            &root.join("cgroup.controllers"),
            "cpuset cpu io memory pids\n",
        );
        let containers = (0..count)
            .map(|i| {
                // Distinct in the first 12 characters: the short id is the key of a row.
                let full_id = format!("{:012x}{}", 0xfa11_0000_0000u64 + i as u64, "c".repeat(52));
                let pod_uid = format!("0b8f{i:04}-aaaa-bbbb-cccc-000000000000");
                let cgroup_path = format!(
                    "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/cri-containerd-{full_id}.scope",
                    pod_uid.replace('-', "_")
                );
                FixtureContainer {
                    short_id: full_id[..12].to_string(),
                    full_id,
                    pod_uid,
                    cgroup_path,
                }
            })
            .collect();
        let fixture = Self {
            root: root.to_path_buf(),
            containers,
        };
        for (i, c) in fixture.containers.iter().enumerate() {
            let dir = fixture.root.join(&c.cgroup_path);
            std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
            write_atomic(&dir.join("cgroup.procs"), &format!("{}\n", 1000 + i));
            fixture.write(i, 0);
        }
        fixture
    }

    /// Writes container `i`'s files for `generation` (counters grow with it).
    pub fn write(&self, i: usize, generation: u64) {
        let c = &self.containers[i];
        let dir = self.root.join(&c.cgroup_path);
        let k = i as u64 + 1;
        let g = generation;
        let usage = 1_000_000 * k + 12_345 * g;
        let user = usage * 2 / 3;
        write_atomic(
            &dir.join("cpu.stat"),
            &format!(
                "usage_usec {usage}\nuser_usec {user}\nsystem_usec {}\nnr_periods {}\nnr_throttled {}\nthrottled_usec {}\n",
                usage - user,
                100 * k + g,
                7 * k + g / 10,
                3_000 * k + 17 * g
            ),
        );
        let current = 64 * 1024 * 1024 * k + 4096 * g;
        let file = 8 * 1024 * 1024 * k;
        write_atomic(&dir.join("memory.current"), &format!("{current}\n"));
        write_atomic(
            &dir.join("memory.stat"),
            &format!(
                "anon {}\nfile {file}\nkernel {}\nfile_mapped {}\nfile_dirty {}\nfile_writeback {}\nactive_file {}\ninactive_file {}\nworkingset_refault_anon {}\nworkingset_refault_file {}\npgscan {}\npgsteal {}\n",
                current - file,
                4096 * k,
                file / 8,
                512 * g,
                256 * k,
                file / 2,
                file / 4,
                k + g,
                2 * k + g,
                100 * k + g,
                90 * k + g
            ),
        );
        write_atomic(
            &dir.join("memory.swap.current"),
            &format!("{}\n", 65_536 * k),
        );
        write_atomic(
            &dir.join("memory.peak"),
            &format!("{}\n", current + 1_048_576),
        );
        write_atomic(&dir.join("cpu.max"), &format!("{} 100000\n", 50_000 * k));
        write_atomic(&dir.join("cpu.weight"), &format!("{}\n", 39 * k));
        let pids_max = if i.is_multiple_of(2) {
            format!("{}\n", 1000 * k)
        } else {
            "max\n".into()
        };
        write_atomic(&dir.join("pids.max"), &pids_max);
        // Every other container is unlimited.
        let max = if i.is_multiple_of(2) {
            format!("{}\n", 512 * 1024 * 1024 * k)
        } else {
            "max\n".into()
        };
        write_atomic(&dir.join("memory.max"), &max);
        write_atomic(
            &dir.join("memory.events"),
            &format!(
                "low 0\nhigh {}\nmax {k}\noom {k}\noom_kill {}\noom_group_kill 0\n",
                2 * k,
                k / 2
            ),
        );
        write_atomic(&dir.join("pids.current"), &format!("{}\n", 3 * k + g % 5));
        write_atomic(
            &dir.join("io.stat"),
            &format!(
                "8:0 rbytes={} wbytes={} rios={} wios={} dbytes=0 dios=0\n259:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0\n",
                4096 * k + g,
                8192 * k + 2 * g,
                10 * k,
                20 * k + g
            ),
        );
        for (name, base) in [("cpu", 11u64), ("memory", 22), ("io", 33)] {
            write_atomic(
                &dir.join(format!("{name}.pressure")),
                &format!(
                    "some avg10=0.00 avg60=0.00 avg300=0.00 total={}\nfull avg10=0.00 avg60=0.00 avg300=0.00 total={}\n",
                    base * 1000 * k + g,
                    base * 100 * k + g
                ),
            );
        }
    }

    /// Rewrites every container for `generation`.
    pub fn write_all(&self, generation: u64) {
        for i in 0..self.containers.len() {
            self.write(i, generation);
        }
    }
}
