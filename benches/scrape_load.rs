//! Does scraping slow the collection loop? The real agent samples 200 fixture
//! containers once a second; first alone (baseline), then while a loopback
//! client scrapes `/metrics` 50 times a second for 30 s. Prints late cycles,
//! cycle durations and cycle lag (tick → cycle published) percentiles, and
//! scrape latency and size.
//!
//! `cargo bench --bench scrape_load` (env: FGM_BENCH_CONTAINERS, FGM_BENCH_SECONDS,
//! FGM_BENCH_RATE to change the defaults 200, 30, 50).

#[path = "../tests/metrics_support/mod.rs"]
mod metrics_support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use metrics_support::agent_run::AgentRun;
use metrics_support::{http_get, parse_text};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn summary(label: &str, unit: &str, mut v: Vec<f64>) {
    v.sort_by(f64::total_cmp);
    println!(
        "  {label:<34} n={:<5} p50={:>8.3}{unit} p90={:>8.3}{unit} p99={:>8.3}{unit} max={:>8.3}{unit}",
        v.len(),
        percentile(&v, 0.5),
        percentile(&v, 0.9),
        percentile(&v, 0.99),
        v.last().copied().unwrap_or(f64::NAN)
    );
}

/// Self-metric values of one scrape: (cycles, late cycles, duration histogram buckets).
fn self_metrics(addr: std::net::SocketAddr) -> (f64, f64, Vec<(f64, f64)>) {
    let body = http_get(addr, "/metrics", None)
        .unwrap_or_else(|e| panic!("scrape: {e}"))
        .body;
    let mut cycles = 0.0;
    let mut late = 0.0;
    let mut buckets = Vec::new();
    for s in parse_text(&body) {
        let v: f64 = s.value.parse().unwrap_or(f64::NAN);
        match s.name.as_str() {
            "fgm_agent_cycles_total" => cycles = v,
            "fgm_agent_late_cycles_total" => late = v,
            "fgm_agent_cycle_duration_seconds_bucket" => {
                let le = s.labels.get("le").map(String::as_str).unwrap_or("+Inf");
                buckets.push((le.parse().unwrap_or(f64::INFINITY), v));
            }
            _ => {}
        }
    }
    (cycles, late, buckets)
}

/// Upper bound of the bucket holding quantile `q` of the difference of two histograms.
fn histogram_quantile(before: &[(f64, f64)], after: &[(f64, f64)], q: f64) -> f64 {
    let diff: Vec<(f64, f64)> = after
        .iter()
        .map(|(le, n)| {
            let b = before
                .iter()
                .find(|(l, _)| l == le)
                .map_or(0.0, |(_, n)| *n);
            (*le, n - b)
        })
        .collect();
    let total = diff.last().map_or(0.0, |(_, n)| *n);
    diff.iter()
        .find(|(_, n)| *n >= total * q)
        .map_or(f64::NAN, |(le, _)| *le)
}

async fn watch_lags(
    mut rx: fine_grained_monitor::agent::CycleReceiver,
    until: Instant,
) -> Vec<f64> {
    let mut lags = Vec::new();
    while Instant::now() < until {
        let Ok(Ok(())) = tokio::time::timeout(Duration::from_secs(3), rx.changed()).await else {
            break;
        };
        let ts = rx.borrow_and_update().timestamp;
        if let Some(ts) = ts {
            lags.push((chrono::Utc::now() - ts).num_microseconds().unwrap_or(0) as f64 / 1000.0);
        }
    }
    lags
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let containers = env_or("FGM_BENCH_CONTAINERS", 200) as usize;
    let seconds = env_or("FGM_BENCH_SECONDS", 30);
    let rate = env_or("FGM_BENCH_RATE", 50);
    let baseline_seconds = 10;
    println!(
        "scrape_load: agent on {containers} fixture containers, interval 1s; baseline {baseline_seconds}s, then {rate} scrapes/s for {seconds}s"
    );
    let run = AgentRun::start(
        containers,
        Duration::from_secs(1),
        Duration::from_secs(90),
        Duration::from_secs(5),
    )
    .await;
    let addr = run.addr;
    // Let the first cycles (cold file opens) pass.
    tokio::time::sleep(Duration::from_millis(2500)).await;

    let read_self = move || tokio::task::spawn_blocking(move || self_metrics(addr));
    let (c0, l0, h0) = read_self().await.unwrap_or_else(|e| panic!("{e}"));
    let cycles_rx = run_cycles(&run);
    let lags_base = watch_lags(
        cycles_rx.clone(),
        Instant::now() + Duration::from_secs(baseline_seconds),
    )
    .await;
    let (c1, l1, h1) = read_self().await.unwrap_or_else(|e| panic!("{e}"));

    // Load: `rate` scrapes per second, paced, from 4 client threads.
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let bytes = Arc::new(Mutex::new(0usize));
    let end = Instant::now() + Duration::from_secs(seconds);
    let threads = 4u64;
    let period = Duration::from_secs_f64(threads as f64 / rate as f64);
    let mut clients = Vec::new();
    for t in 0..threads {
        let (latencies, bytes) = (latencies.clone(), bytes.clone());
        clients.push(std::thread::spawn(move || {
            let mut next = Instant::now() + period.mul_f64(t as f64 / threads as f64);
            let mut errors = 0;
            while Instant::now() < end {
                let now = Instant::now();
                if next > now {
                    std::thread::sleep(next - now);
                }
                next += period;
                let started = Instant::now();
                match http_get(addr, "/metrics", None) {
                    Ok(r) if r.status == 200 => {
                        let ms = started.elapsed().as_secs_f64() * 1000.0;
                        latencies.lock().map(|mut l| l.push(ms)).ok();
                        bytes.lock().map(|mut b| *b += r.body.len()).ok();
                    }
                    _ => errors += 1,
                }
            }
            errors
        }));
    }
    let lags_load = watch_lags(cycles_rx, end).await;
    let errors: u64 = clients
        .into_iter()
        .map(|c| c.join().unwrap_or_else(|_| panic!("client thread")))
        .sum();
    let (c2, l2, h2) = read_self().await.unwrap_or_else(|e| panic!("{e}"));
    let _data = run.stop().await;

    let latencies = latencies.lock().map(|l| l.clone()).unwrap_or_default();
    let total_bytes = bytes.lock().map(|b| *b).unwrap_or_default();
    let scrapes = latencies.len();
    println!("baseline ({baseline_seconds}s, no scrapes):");
    println!("  cycles {}  late cycles {}", c1 - c0, l1 - l0);
    println!(
        "  cycle duration (histogram bucket bounds)  p50<={:.4}s p99<={:.4}s",
        histogram_quantile(&h0, &h1, 0.5),
        histogram_quantile(&h0, &h1, 0.99)
    );
    summary("cycle lag tick→published (ms)", "", lags_base);
    println!("under load ({seconds}s, target {rate}/s):");
    println!(
        "  scrapes {scrapes} ({:.1}/s), errors {errors}, mean size {} KiB",
        scrapes as f64 / seconds as f64,
        total_bytes / scrapes.max(1) / 1024
    );
    println!("  cycles {}  LATE CYCLES {}", c2 - c1, l2 - l1);
    println!(
        "  cycle duration (histogram bucket bounds)  p50<={:.4}s p99<={:.4}s",
        histogram_quantile(&h1, &h2, 0.5),
        histogram_quantile(&h1, &h2, 0.99)
    );
    summary("cycle lag tick→published (ms)", "", lags_load);
    summary("scrape latency (ms)", "", latencies);
}

fn run_cycles(run: &AgentRun) -> fine_grained_monitor::agent::CycleReceiver {
    run.cycles.clone()
}
