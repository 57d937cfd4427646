"""Unit tests of the benchmark's pure parts: `python3 -m unittest discover -s bench/peers`."""

import json
import unittest

import measure

STAT = "4242 (my (odd) proc) S 1 4242 4242 0 -1 4194560 100 0 0 0 150 30 7 3 20 0 4 0 1000 1000000 250 18446744073709551615"


class ProcTests(unittest.TestCase):
    def test_stat_fields_after_a_command_name_with_spaces_and_parentheses(self):
        s = measure.parse_stat(STAT)
        self.assertEqual(s["comm"], "my (odd) proc")
        self.assertEqual((s["ppid"], s["utime"], s["stime"], s["cutime"], s["cstime"]), (1, 150, 30, 7, 3))
        self.assertEqual(measure.cpu_ticks(s), 190)

    def test_stat_rejects_garbage(self):
        with self.assertRaises(ValueError):
            measure.parse_stat("no parenthesis here")

    def test_status_kib_to_bytes_and_absent_key(self):
        text = "Name:\tx\nVmHWM:\t   2048 kB\nVmRSS:\t    1024 kB\n"
        self.assertEqual(measure.parse_status_bytes(text, "VmHWM"), 2048 * 1024)
        self.assertEqual(measure.parse_status_bytes(text, "VmRSS"), 1024 * 1024)
        self.assertEqual(measure.parse_status_bytes(text, "VmSwap"), 0)

    def test_io(self):
        self.assertEqual(measure.parse_io("rchar: 10\nwrite_bytes: 4096\n")["write_bytes"], 4096)

    def test_descendants_walks_the_whole_tree_only(self):
        ppids = {10: 1, 11: 10, 12: 11, 13: 10, 20: 1}
        self.assertEqual(sorted(measure.descendants(ppids, 10)), [11, 12, 13])
        self.assertEqual(measure.descendants(ppids, 12), [])


MOUNTINFO = """\
25 1 0:23 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
26 25 0:24 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
27 25 0:25 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
28 25 0:26 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
29 25 0:27 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
30 25 0:25 / /mnt/again/memory rw,relatime - cgroup cgroup rw,memory
31 1 0:28 / /proc rw - proc proc rw
"""


class CgroupTests(unittest.TestCase):
    def test_hybrid_mounts_each_hierarchy_once(self):
        mounts = measure.cgroup_mounts(MOUNTINFO)
        self.assertEqual(
            [(m["path"], m["version"], m["controllers"]) for m in mounts],
            [
                ("/sys/fs/cgroup/cpu,cpuacct", 1, ["cpu", "cpuacct"]),
                ("/sys/fs/cgroup/memory", 1, ["memory"]),
                ("/sys/fs/cgroup/systemd", 1, ["name=systemd"]),
                ("/sys/fs/cgroup/unified", 2, []),
            ],
        )


PROM = """\
# HELP container_cpu_usage_seconds_total x
container_cpu_usage_seconds_total{cpu="cpu00",id="/a/c0002"} 1 1700000000000
container_cpu_usage_seconds_total{cpu="cpu01",id="/a/c0002"} 1
container_memory_rss{id="/a/c0002"} 5
container_memory_rss{id="/a/c0003"} 5
container_memory_rss{id="/a/c0002x"} 5
machine_memory_bytes{boot_id="b"} 9
"""


class MetricCountTests(unittest.TestCase):
    def test_cadvisor_series_of_one_container(self):
        self.assertEqual(measure.cadvisor_counts(PROM, "/a/c0002"), (3, 3, 2))

    def test_netdata_dimensions_of_one_cgroup(self):
        charts = {
            "charts": {
                "cgroup_a_c0002.cpu": {"type": "cgroup_a_c0002", "dimensions": {"user": {}, "system": {}}},
                "cgroup_a_c0002.mem": {"type": "cgroup_a_c0002", "dimensions": {"rss": {}}},
                "cgroup_a_c0003.cpu": {"type": "cgroup_a_c0003", "dimensions": {"user": {}}},
                "system.cpu": {"type": "system", "dimensions": {"user": {}}},
            }
        }
        self.assertEqual(measure.netdata_counts(json.dumps(charts), "c0002"), (2, 3, 2))



class VaryingMetricTests(unittest.TestCase):
    def test_constant_and_empty_metrics_do_not_count(self):
        obs = {"cpu": [1, 2, 2], "period": [100000, 100000], "oom": [0, None, 0], "none": [None], "reset": [5, None, 3]}
        self.assertEqual(measure.varying(obs), ["cpu", "reset"])

    def test_cadvisor_series_keyed_without_identity_labels_over_scrapes(self):
        first = (
            'container_cpu_usage_seconds_total{cpu="cpu00",id="/g/c1",image="",name=""} 1.5 1700000000000\n'
            'container_cpu_usage_seconds_total{cpu="cpu00",id="/g/c2",image="",name=""} 2.5\n'
            'container_tasks_state{id="/g/c1",state="running"} 0\n'
            'container_tasks_state{id="/g/c2",state="running"} 0\n'
            'container_memory_rss{id="/g/other"} 7\n'
            'machine_cpu_cores 2\n'
        )
        second = 'container_tasks_state{id="/g/c1",state="running"} 0\ncontainer_last_seen{id="/g/c1"} NaN\n'
        obs = measure.cadvisor_observations([first, second], ["/g/c1", "/g/c2"])
        self.assertEqual(obs["container_cpu_usage_seconds_total{cpu=cpu00}"], [1.5, 2.5])
        self.assertEqual(obs["container_tasks_state{state=running}"], [0.0, 0.0, 0.0])
        self.assertNotIn("container_memory_rss", obs, "not a sampled container")
        self.assertEqual(measure.varying(obs), ["container_cpu_usage_seconds_total{cpu=cpu00}"])

    def test_netdata_dimensions_keyed_by_chart_without_the_cgroup(self):
        data = {
            "cgroup_g_c1.cpu": {"labels": ["time", "user", "system"], "data": [[2, 1.0, 0.0], [1, 3.0, 0.0]]},
            "cgroup_g_c2.cpu": {"labels": ["time", "user", "system"], "data": [[2, 1.0, 0.0]]},
            "cgroup_g_c2.mem": {"labels": ["time", "rss"], "data": [[2, 10.0]]},
        }
        obs = measure.netdata_observations(data)
        self.assertEqual(obs["cpu.user"], [1.0, 3.0, 1.0])
        self.assertEqual(measure.varying(obs), ["cpu.user"])
        self.assertEqual(obs["mem.rss"], [10.0])

    def test_our_columns(self):
        rows = [{"cpu": 1, "lim": None}, {"cpu": 2, "lim": None}]
        self.assertEqual(measure.column_observations(rows, ["cpu", "lim"]), {"cpu": [1, 2], "lim": [None, None]})


def run(monitor, n, cpu, rss, disk, **extra):
    r = {
        "monitor": monitor, "n": n, "cpu_pct_core": cpu, "cpu_us_per_container_sample": cpu * 10,
        "peak_rss_bytes": rss, "peak_anon_bytes": rss // 2, "disk_bytes_per_container_sample": disk, "metrics_per_container": 30,
        "metric_names_per_container": 25, "metrics_varying": 12, "containers_seen": n + 2, "loadavg_1m": 1.5,
    }
    r.update(extra)
    return r


class TableTests(unittest.TestCase):
    def test_table_rows_and_storage_less_peer(self):
        table = measure.render_table([run("fine-grained-monitor", 200, 1.0, 10 << 20, 12.5), run("cAdvisor", 200, 10.0, 100 << 20, None)])
        lines = table.strip().splitlines()
        self.assertEqual(len(lines), 4)
        self.assertIn("| fine-grained-monitor | 200 | 1.00 | 10.00 | 10.0 MiB | 5.0 MiB | 12.5 | 30 | 25 | 12 | 202 | 1.50 |", lines)
        self.assertIn("no storage", lines[3])

    def test_failed_run_is_shown_not_dropped(self):
        table = measure.render_table([{"monitor": "Netdata", "n": 50, "error": "exited with 1"}])
        self.assertIn("failed: exited with 1", table)

    def test_ratios_per_n_and_peer(self):
        runs = [
            run("fine-grained-monitor", 200, 1.0, 10, 5.0),
            run("cAdvisor", 200, 10.0, 100, None),
            run("Netdata", 200, 2.0, 20, 10.0),
            run("Netdata", 50, 2.0, 20, 10.0),
        ]
        r = measure.ratios(runs)
        self.assertEqual(set(r), {(200, "cAdvisor"), (200, "Netdata")})
        self.assertEqual(r[(200, "cAdvisor")], {"cpu": 0.1, "rss": 0.1, "anon": 0.1, "disk": None})
        self.assertEqual(r[(200, "Netdata")], {"cpu": 0.5, "rss": 0.5, "anon": 0.5, "disk": 0.5})
        self.assertIn("| 200 | cAdvisor | 0.10× | 0.10× | 0.10× | — |", measure.render_ratios(r))

    def test_rounds_summarised_by_their_median_failed_ones_left_out(self):
        runs = [
            run("cAdvisor", 200, 7.0, 50, None),
            run("cAdvisor", 200, 14.0, 52, None),
            run("cAdvisor", 200, 9.0, 51, None),
            {"monitor": "cAdvisor", "n": 200, "error": "boom"},
            run("Netdata", 200, 1.5, 40, 12.0),
        ]
        summary = {(r["monitor"], r["n"]): r for r in measure.median_runs(runs)}
        self.assertEqual(summary[("cAdvisor", 200)]["cpu_pct_core"], 9.0)
        self.assertEqual(summary[("cAdvisor", 200)]["peak_rss_bytes"], 51)
        self.assertEqual(summary[("cAdvisor", 200)]["rounds"], 3)
        self.assertIsNone(summary[("cAdvisor", 200)]["disk_bytes_per_container_sample"])
        self.assertEqual(summary[("Netdata", 200)]["rounds"], 1)
        two = measure.median_runs([run("x", 50, 2.0, 10, 1.0), run("x", 50, 4.0, 30, 3.0)])[0]
        self.assertEqual((two["cpu_pct_core"], two["peak_rss_bytes"]), (3.0, 20))


if __name__ == "__main__":
    unittest.main()
