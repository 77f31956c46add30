//! The orchestrator: starts the fake upstream (core 1), the bare proxy and the gateway
//! (core 0, one at a time under load), sets up a funded account and key through the
//! gateway's own API, runs every scenario against direct / proxy / gateway, and writes the
//! results as JSON and as `docs/BENCHMARKS.md`. The load generator runs in this process,
//! which `bench/run` pins to core 1 beside the upstream.

use crate::load::{self, Measured, Target};
use crate::usage;
use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio::time::Instant;

#[derive(clap::Args)]
pub struct Options {
    /// Shorter runs (a few seconds per figure, 1,000 held streams, a 1-minute soak).
    #[arg(long)]
    quick: bool,
    /// Length of the memory soak at 2,000 req/s, in seconds (default 600; 60 with --quick).
    #[arg(long)]
    soak_secs: Option<u64>,
    /// The gateway binary (default: target/release/switchyard next to this one).
    #[arg(long)]
    switchyard: Option<PathBuf>,
    /// Where the JSON results go (default bench/results/latest.json).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Instead of the scenarios: print the gateway's pid, then hold it under closed-loop
    /// load this many seconds (for `perf record -p`).
    #[arg(long)]
    profile_secs: Option<u64>,
    /// Only one figure, then stop: `cpu` (closed loop: throughput, CPU per request split into
    /// user and kernel), `open` (added latency at 2,000 req/s), `ttfb` (streaming time to
    /// first byte) or `streams` (RSS per held stream).
    #[arg(long, value_parser = ["cpu", "open", "ttfb", "streams"])]
    only: Option<String>,
    /// With `--profile-secs`: hold `gateway` (default) or the bare `proxy` under load.
    #[arg(long, value_parser = ["gateway", "proxy"], default_value = "gateway")]
    profile_target: String,
    /// A command the profiled process (see `--profile-target`; the gateway otherwise) runs
    /// under, e.g. "valgrind --tool=callgrind".
    #[arg(long)]
    wrap: Option<String>,
}

/// A child process killed when dropped.
struct Proc {
    name: &'static str,
    child: Child,
}

impl Proc {
    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_addr() -> Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// Runs `exe args` pinned to `core`, under `wrap` (e.g. "valgrind --tool=callgrind") when
/// given, its output appended to `log`.
fn spawn_pinned(
    name: &'static str,
    core: u32,
    wrap: Option<&str>,
    exe: &Path,
    args: &[&str],
    env: &[(&str, String)],
    log: &Path,
) -> Result<Proc> {
    let out = std::fs::File::create(log)?;
    let err = out.try_clone()?;
    let mut cmd = Command::new("taskset");
    cmd.arg("-c")
        .arg(core.to_string())
        .args(wrap.unwrap_or_default().split_whitespace())
        .arg(exe)
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .with_context(|| format!("starting {name} ({})", exe.display()))?;
    Ok(Proc { name, child })
}

async fn wait_listening(p: &mut Proc, addr: SocketAddr) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        if let Some(status) = p.child.try_wait()? {
            bail!("{} exited early: {status}", p.name);
        }
        if Instant::now() > deadline {
            bail!("{} never listened on {addr}", p.name);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// CPU time used by a process so far: (user, kernel).
fn cpu_split(pid: u32, tick: f64) -> Result<(Duration, Duration)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| anyhow!("odd /proc stat"))?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11).ok_or_else(|| anyhow!("no utime"))?.parse()?;
    let stime: f64 = f.get(12).ok_or_else(|| anyhow!("no stime"))?.parse()?;
    Ok((
        Duration::from_secs_f64(utime / tick),
        Duration::from_secs_f64(stime / tick),
    ))
}

/// Resident memory in bytes.
fn rss(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .ok_or_else(|| anyhow!("no VmRSS"))?
        .parse()?;
    Ok(kb * 1024)
}

fn clock_tick() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    // This process is pinned to one core; count the machine's.
    let cores = std::fs::read_to_string("/proc/cpuinfo")
        .map(|c| c.lines().filter(|l| l.starts_with("processor")).count())
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cpu}, {cores} cores, Linux {}", kernel.trim())
}

/// For the gateway, waits until its usage writer has stored every request so far and returns
/// how long that took; zero for the others. A run's CPU and throughput then include the
/// writer's share even when it runs behind (it yields the core to requests, see
/// `engine::usage::UsageSink::room`).
async fn settled(t: &Target) -> Result<Duration> {
    if t.key.is_none() {
        return Ok(Duration::ZERO);
    }
    let started = Instant::now();
    let http = reqwest::Client::new();
    let url = format!("http://{}/health/ready", t.addr);
    loop {
        let ready: Value = http.get(&url).send().await?.json().await?;
        if ready["usage_queue"].as_u64() == Some(0) {
            return Ok(started.elapsed());
        }
        if started.elapsed() > Duration::from_secs(120) {
            bail!("the gateway's usage queue did not drain: {ready}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

struct Setup {
    key: String,
}

async fn setup(gateway: SocketAddr) -> Result<Setup> {
    let http = reqwest::Client::new();
    let url = |p: &str| format!("http://{gateway}{p}");
    let ok = |r: reqwest::Response| async move {
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("setup call failed: {status} {body}");
        }
        Ok(body)
    };
    let user = ok(http
        .post(url("/api/auth/signup"))
        .json(&json!({ "email": "bench@example.com", "password": "bench-password-1", "name": "Bench" }))
        .send()
        .await?)
    .await?;
    let user_id = user["user"]["id"].as_str().unwrap_or_default().to_owned();
    let token = user["access_token"].as_str().unwrap_or_default().to_owned();
    let admin = ok(http
        .post(url("/api/auth/login"))
        .json(&json!({ "email": "admin@bench.local", "password": "bench-admin-password" }))
        .send()
        .await?)
    .await?;
    let admin = admin["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    ok(http
        .put(url("/api/admin/plans/bench"))
        .bearer_auth(&admin)
        .json(&json!({
            "monthly_price_usd": "0", "included_credits_usd": "0", "monthly_cap_usd": "100000000",
            "allowed_models": null, "rpm": 1_000_000_000u32, "tpm": null, "concurrency": 1_000_000u32
        }))
        .send()
        .await?)
    .await?;
    ok(http
        .patch(url(&format!("/api/admin/accounts/{user_id}")))
        .bearer_auth(&admin)
        .json(&json!({ "plan": "bench" }))
        .send()
        .await?)
    .await?;
    ok(http
        .post(url(&format!("/api/admin/accounts/{user_id}/credits")))
        .bearer_auth(&admin)
        .json(&json!({ "amount_usd": "10000000", "reason": "benchmark" }))
        .send()
        .await?)
    .await?;
    let key = ok(http
        .post(url("/api/keys"))
        .bearer_auth(&token)
        .json(&json!({ "name": "bench" }))
        .send()
        .await?)
    .await?;
    Ok(Setup {
        key: key["key"].as_str().unwrap_or_default().to_owned(),
    })
}

fn chat_body(stream: bool, chunks: usize, interval_us: u64) -> Bytes {
    let mut b = json!({
        "model": "bench",
        "messages": [
            { "role": "system", "content": "You are a helpful assistant." },
            { "role": "user", "content": "Say hello in one short sentence." }
        ],
        "max_tokens": 64,
    });
    if stream {
        b["stream"] = json!(true);
        b["bench"] = json!({ "chunks": chunks, "interval_us": interval_us });
    }
    Bytes::from(b.to_string())
}

/// One row of results: a figure for each of direct / proxy / gateway.
#[derive(Default, Clone, Copy, serde::Serialize)]
struct Trio {
    direct: f64,
    proxy: f64,
    gateway: f64,
}

struct Durations {
    closed: Duration,
    open: Duration,
    warm: Duration,
    held: usize,
    soak: Duration,
    writer_events: usize,
}

pub async fn run(opts: Options) -> Result<()> {
    let d = if opts.quick {
        Durations {
            closed: Duration::from_secs(5),
            open: Duration::from_secs(5),
            warm: Duration::from_secs(1),
            held: 1_000,
            soak: Duration::from_secs(opts.soak_secs.unwrap_or(60)),
            writer_events: 50_000,
        }
    } else {
        Durations {
            closed: Duration::from_secs(15),
            open: Duration::from_secs(15),
            warm: Duration::from_secs(3),
            held: 5_000,
            soak: Duration::from_secs(opts.soak_secs.unwrap_or(600)),
            writer_events: 200_000,
        }
    };
    let me = std::env::current_exe()?;
    let switchyard = opts.switchyard.clone().unwrap_or_else(|| {
        me.parent()
            .map(|p| p.join("switchyard"))
            .unwrap_or_else(|| PathBuf::from("switchyard"))
    });
    let tick = clock_tick();
    let dir = std::env::temp_dir().join(format!("switchyard-bench-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("data"))?;
    let (up_addr, proxy_addr, gw_addr) = (free_addr()?, free_addr()?, free_addr()?);

    let mut upstream = spawn_pinned(
        "upstream",
        1,
        None,
        &me,
        &["upstream", "--listen", &up_addr.to_string()],
        &[],
        &dir.join("upstream.log"),
    )?;
    // `--wrap` applies to the process being profiled: the gateway, or the proxy with
    // `--profile-target proxy`.
    let wrap_proxy = opts.profile_target == "proxy";
    let mut proxy = spawn_pinned(
        "proxy",
        0,
        opts.wrap.as_deref().filter(|_| wrap_proxy),
        &me,
        &[
            "proxy",
            "--listen",
            &proxy_addr.to_string(),
            "--upstream",
            &up_addr.to_string(),
        ],
        &[],
        &dir.join("proxy.log"),
    )?;
    let config = format!(
        r#"data_dir = "{data}"
[server]
listen = "{gw_addr}"
[database]
url = "sqlite://{data}/switchyard.db"
[bootstrap]
admin_email = "admin@bench.local"
admin_password = "bench-admin-password"
[providers.bench]
kind = "openai"
base_url = "http://{up_addr}/v1"
first_byte_timeout_secs = 60
idle_timeout_secs = 120
total_timeout_secs = 1800
[models.bench]
provider = "bench"
upstream_model = "bench-model"
input_price = "0.10"
output_price = "0.30"
"#,
        data = dir.join("data").display()
    );
    let config_path = dir.join("switchyard.toml");
    std::fs::write(&config_path, config)?;
    let mut gateway = spawn_pinned(
        "gateway",
        0,
        opts.wrap.as_deref().filter(|_| !wrap_proxy),
        &switchyard,
        &["serve"],
        &[("SWITCHYARD_CONFIG", config_path.display().to_string())],
        &dir.join("gateway.log"),
    )?;
    wait_listening(&mut upstream, up_addr).await?;
    wait_listening(&mut proxy, proxy_addr).await?;
    wait_listening(&mut gateway, gw_addr).await?;
    let s = setup(gw_addr).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_idle_gateway = rss(gateway.pid())?;
    let rss_idle_proxy = rss(proxy.pid())?;
    println!("gateway up at {gw_addr}; logs in {}", dir.display());

    let path = "/v1/chat/completions".to_owned();
    let direct = Target {
        addr: up_addr,
        path: path.clone(),
        key: None,
        gzip: false,
    };
    let via_proxy = Target {
        addr: proxy_addr,
        ..direct.clone()
    };
    let via_gateway = Target {
        addr: gw_addr,
        key: Some(s.key.clone()),
        ..direct.clone()
    };
    let targets = [
        ("direct", &direct, upstream.pid()),
        ("proxy", &via_proxy, proxy.pid()),
        ("gateway", &via_gateway, gateway.pid()),
    ];
    let small = chat_body(false, 0, 0);
    let only = |figure: &str| opts.only.as_deref() == Some(figure);
    if only("streams") {
        held_streams(
            [
                ("proxy", &via_proxy, proxy.pid()),
                ("gateway", &via_gateway, gateway.pid()),
            ],
            d.held,
            // Under a wrapper (a heap profiler), time to take a snapshot.
            Duration::from_secs(if opts.wrap.is_some() { 60 } else { 2 }),
        )
        .await?;
        return Ok(());
    }
    if let Some(secs) = opts.profile_secs {
        let (name, target, pid) = if opts.profile_target == "proxy" {
            ("proxy", &via_proxy, proxy.pid())
        } else {
            ("gateway", &via_gateway, gateway.pid())
        };
        println!("{name} pid {pid}");
        tokio::time::sleep(Duration::from_secs(2)).await;
        let m = load::closed(target, small, 8, Duration::from_secs(secs)).await?;
        check(name, &m)?;
        println!("{} requests, {:.0} req/s", m.requests, m.rps());
        // Time for a profiler to take its snapshot once the usage writer caught up.
        let drained = settled(&via_gateway).await?;
        println!("usage stored {:.1} s later", drained.as_secs_f64());
        tokio::time::sleep(Duration::from_secs(3)).await;
        return Ok(());
    }

    if only("ttfb") {
        streaming(targets).await?;
        return Ok(());
    }
    if only("open") {
        open_loop(targets, &small, 2_000, &d, tick).await?;
        return Ok(());
    }

    // 1. Closed loop: throughput and CPU per request. The targets take turns, ROUNDS times,
    // and each figure is the median of its rounds: on a shared VM a noisy stretch then
    // spoils one round of one target, not the whole comparison.
    let conns = 32;
    let mut rps = Samples::default();
    let mut cpu_us = Samples::default();
    let mut user_us = Samples::default();
    let mut sys_us = Samples::default();
    let mut closed_p50 = Samples::default();
    // 6. In the same rounds, the gateway again with the compression SDKs ask for.
    let gz = Target {
        gzip: true,
        ..via_gateway.clone()
    };
    let (mut gzip_cpu, mut gzip_rps) = (Vec::new(), Vec::new());
    let rounds = [
        targets[0],
        targets[1],
        targets[2],
        ("gzip", &gz, gateway.pid()),
    ];
    for (_, t, _) in rounds {
        load::closed(t, small.clone(), conns, d.warm).await?;
    }
    for _ in 0..ROUNDS {
        for (name, t, pid) in rounds {
            let (user0, sys0) = cpu_split(pid, tick)?;
            let mut m = load::closed(t, small.clone(), conns, d.closed / ROUNDS).await?;
            m.elapsed += settled(t).await?;
            let (user1, sys1) = cpu_split(pid, tick)?;
            check(name, &m)?;
            let n = m.requests.max(1) as f64;
            let user = (user1 - user0).as_secs_f64() * 1e6 / n;
            let sys = (sys1 - sys0).as_secs_f64() * 1e6 / n;
            if name == "gzip" {
                gzip_cpu.push(user + sys);
                gzip_rps.push(m.rps());
                continue;
            }
            rps.push(name, m.rps());
            cpu_us.push(name, user + sys);
            user_us.push(name, user);
            sys_us.push(name, sys);
            closed_p50.push(name, m.us(0.5));
        }
    }
    let (rps, cpu_us, closed_p50) = (rps.median(), cpu_us.median(), closed_p50.median());
    let (user_us, sys_us) = (user_us.median(), sys_us.median());
    for (name, _, _) in targets {
        println!(
            "closed loop  {name:8} {:>9.0} req/s  {:>6.1} µs CPU/req (user {:.1}, kernel {:.1})  p50 {:>7.0} µs  (median of {ROUNDS} rounds)",
            get(&rps, name),
            get(&cpu_us, name),
            get(&user_us, name),
            get(&sys_us, name),
            get(&closed_p50, name),
        );
    }
    let (gzip_cpu_us, gzip_rps) = (median(&gzip_cpu), median(&gzip_rps));
    println!(
        "closed loop  gzip     {gzip_rps:>9.0} req/s  {gzip_cpu_us:>6.1} µs CPU/req  (median of {ROUNDS} rounds)"
    );

    if only("cpu") {
        return Ok(());
    }

    // 2. Open loop at 2,000 req/s: added latency.
    let rate = 2_000;
    let [p50, p99, p999, open_cpu_us] = open_loop(targets, &small, rate, &d, tick).await?;

    // 3. Streaming: time to first byte, and no stall between chunks.
    let (ttfb, gap_ms, chunks_seen) = streaming(targets).await?;

    // 4. Thousands of slow streams held open: memory per stream.
    let (held_per_stream, held_opened) = held_streams(
        [
            ("proxy", &via_proxy, proxy.pid()),
            ("gateway", &via_gateway, gateway.pid()),
        ],
        d.held,
        Duration::from_secs(2),
    )
    .await?;
    let rss_after_streams = rss(gateway.pid())?;

    // Memory over a long run at 2,000 req/s.
    let samples = soak(&via_gateway, small.clone(), rate, d.soak, gateway.pid()).await?;

    // 5. The usage writer alone.
    let sqlite = usage::measure(testkit::db::Kind::Sqlite, d.writer_events, 20_000).await?;
    let postgres = usage::measure(testkit::db::Kind::Postgres, d.writer_events, 10_000).await?;
    for (name, w) in [("SQLite", &sqlite), ("Postgres", &postgres)] {
        match w {
            Some(w) => println!(
                "usage writer {name:8} {:>8.0} events/s; at {}/s the queue peaked at {}",
                w.capacity_per_sec, w.steady_rate, w.steady_max_queued
            ),
            None => println!("usage writer {name:8} not reachable; skipped"),
        }
    }

    let results = json!({
        "machine": machine(),
        "quick": opts.quick,
        "closed_loop": { "connections": conns, "rps": rps, "cpu_us_per_request": cpu_us, "p50_us": closed_p50 },
        "gzip_clients": { "rps": gzip_rps, "cpu_us_per_request": gzip_cpu_us },
        "open_loop": {
            "rate": rate, "p50_us": p50, "p99_us": p99, "p999_us": p999,
            "cpu_us_per_request": open_cpu_us,
        },
        "streaming": { "chunks": chunks_seen, "ttfb_p50_us": ttfb, "longest_gap_ms": gap_ms },
        "held_streams": { "count": held_opened, "rss_bytes_per_stream": held_per_stream },
        "rss_bytes": { "gateway_idle": rss_idle_gateway, "proxy_idle": rss_idle_proxy, "gateway_after_streams": rss_after_streams },
        "soak": { "rate": rate, "secs": d.soak.as_secs(), "rss_samples_bytes": samples },
        "usage_writer": {
            "sqlite": sqlite.as_ref().map(|w| json!({ "events_per_sec": w.capacity_per_sec, "events": w.events, "steady_rate": w.steady_rate, "steady_max_queued": w.steady_max_queued })),
            "postgres": postgres.as_ref().map(|w| json!({ "events_per_sec": w.capacity_per_sec, "events": w.events, "steady_rate": w.steady_rate, "steady_max_queued": w.steady_max_queued })),
        },
    });
    let out = opts
        .out
        .clone()
        .unwrap_or_else(|| crate::repo_root().join("bench/results/latest.json"));
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&out, serde_json::to_string_pretty(&results)?)?;
    let md = report(&results);
    std::fs::write(crate::repo_root().join("docs/BENCHMARKS.md"), &md)?;
    println!("\n{md}\nresults: {}", out.display());
    drop(gateway);
    drop(proxy);
    drop(upstream);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Streams of 50 chunks 1 ms apart, 30 in turn on one keep-alive connection per target, in
/// `ROUNDS` rounds in which the targets take turns (as for the closed and open loops: a noisy
/// stretch then spoils one round, not the comparison): the median of each target's TTFB
/// p50s, the longest gap between two chunks in any round, and how many chunks the gateway's
/// streams had.
async fn streaming(targets: [(&str, &Target, u32); 3]) -> Result<(Trio, Trio, usize)> {
    let body = chat_body(true, 50, 1_000);
    let mut ttfb = Samples::default();
    let mut gap_ms = Trio::default();
    let mut chunks = Trio::default();
    for (_, t, _) in targets {
        load::streams(t, body.clone(), 5).await?;
    }
    for _ in 0..ROUNDS {
        for (name, t, _) in targets {
            let st = load::streams(t, body.clone(), 30).await?;
            ttfb.push(name, st.ttfb.value_at_quantile(0.5) as f64 / 1_000.0);
            let gap = get(&gap_ms, name).max(st.max_gap.as_secs_f64() * 1e3);
            set(&mut gap_ms, name, gap);
            set(&mut chunks, name, st.chunks_per_stream as f64);
        }
    }
    let ttfb = ttfb.median();
    for (name, _, _) in targets {
        println!(
            "streaming    {name:8} TTFB p50 {:>6.0} µs  longest gap {:>5.1} ms  {} chunks  (median of {ROUNDS} rounds)",
            get(&ttfb, name),
            get(&gap_ms, name),
            get(&chunks, name),
        );
    }
    Ok((ttfb, gap_ms, get(&chunks, "gateway") as usize))
}

/// Added latency at a fixed rate (p50, p99, p99.9), and CPU per request of each process at
/// that rate: at the same load, unlike the closed loop, where the faster process also keeps
/// the other core busier (and so spares itself the cost of waking it from idle).
async fn open_loop(
    targets: [(&str, &Target, u32); 3],
    body: &Bytes,
    rate: u32,
    d: &Durations,
    tick: f64,
) -> Result<[Trio; 4]> {
    let mut p50 = Samples::default();
    let mut p99 = Samples::default();
    let mut p999 = Samples::default();
    let mut cpu_us = Samples::default();
    for (_, t, _) in targets {
        load::open(t, body.clone(), rate, d.warm, 64).await?;
    }
    for _ in 0..ROUNDS {
        for (name, t, pid) in targets {
            let (user0, sys0) = cpu_split(pid, tick)?;
            let m = load::open(t, body.clone(), rate, d.open / ROUNDS, 64).await?;
            let (user1, sys1) = cpu_split(pid, tick)?;
            check(name, &m)?;
            p50.push(name, m.us(0.5));
            p99.push(name, m.us(0.99));
            p999.push(name, m.us(0.999));
            let cpu = (user1 + sys1).saturating_sub(user0 + sys0);
            cpu_us.push(name, cpu.as_secs_f64() * 1e6 / m.requests.max(1) as f64);
        }
    }
    let (p50, p99, p999, cpu_us) = (p50.median(), p99.median(), p999.median(), cpu_us.median());
    for (name, _, _) in targets {
        println!(
            "open loop    {name:8} {rate:>6} req/s  p50 {:>6.0} µs  p99 {:>6.0} µs  p99.9 {:>6.0} µs  {:>5.1} µs CPU/req  (median of {ROUNDS} rounds)",
            get(&p50, name),
            get(&p99, name),
            get(&p999, name),
            get(&cpu_us, name)
        );
    }
    Ok([p50, p99, p999, cpu_us])
}

/// Holds `count` slow streams open through each target in turn; returns the RSS each gained
/// per stream and how many opened.
async fn held_streams(
    targets: [(&str, &Target, u32); 2],
    count: usize,
    settle: Duration,
) -> Result<(Trio, usize)> {
    let slow = chat_body(true, 600, 1_000_000);
    let mut held_per_stream = Trio::default();
    let mut held_opened = 0;
    for (name, t, pid) in targets {
        let before = rss(pid)?;
        let held = load::hold(t, slow.clone(), count, Duration::from_secs(120)).await?;
        println!("held streams {name:8} {} open", held.opened);
        tokio::time::sleep(settle).await;
        let with = rss(pid)?;
        let opened = held.opened;
        held.release().await;
        if opened < count {
            bail!("{name}: only {opened} of {count} streams opened");
        }
        held_opened = opened;
        let per = with.saturating_sub(before) as f64 / opened as f64;
        set(&mut held_per_stream, name, per);
        println!(
            "held streams {name:8} {opened} open: RSS {:.1} → {:.1} MB, {:.1} KB per stream",
            before as f64 / 1e6,
            with as f64 / 1e6,
            per / 1024.0
        );
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    Ok((held_per_stream, held_opened))
}

/// How many turns each target takes at the closed- and open-loop figures.
const ROUNDS: u32 = 3;

/// Per-round figures of each target.
#[derive(Default)]
struct Samples {
    direct: Vec<f64>,
    proxy: Vec<f64>,
    gateway: Vec<f64>,
}

impl Samples {
    fn push(&mut self, name: &str, v: f64) {
        match name {
            "direct" => self.direct.push(v),
            "proxy" => self.proxy.push(v),
            _ => self.gateway.push(v),
        }
    }

    fn median(&self) -> Trio {
        Trio {
            direct: median(&self.direct),
            proxy: median(&self.proxy),
            gateway: median(&self.gateway),
        }
    }
}

/// The middle value (the mean of the middle two for an even count); 0 when empty.
fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn get(t: &Trio, name: &str) -> f64 {
    match name {
        "direct" => t.direct,
        "proxy" => t.proxy,
        _ => t.gateway,
    }
}

fn set(t: &mut Trio, name: &str, v: f64) {
    match name {
        "direct" => t.direct = v,
        "proxy" => t.proxy = v,
        _ => t.gateway = v,
    }
}

fn check(name: &str, m: &Measured) -> Result<()> {
    if m.errors > 0 {
        bail!(
            "{name}: {} of {} requests failed, first: {}",
            m.errors,
            m.requests + m.errors,
            m.first_error.as_deref().unwrap_or("?")
        );
    }
    Ok(())
}

/// Open-loop load for `length`, sampling the gateway's RSS every tenth of it.
async fn soak(t: &Target, body: Bytes, rate: u32, length: Duration, pid: u32) -> Result<Vec<u64>> {
    let slices = 10;
    let mut samples = vec![rss(pid)?];
    for i in 0..slices {
        let m = load::open(t, body.clone(), rate, length / slices, 64).await?;
        check("soak", &m)?;
        samples.push(rss(pid)?);
        println!(
            "soak         {:>3}%  RSS {:.1} MB  p99 {:.0} µs",
            (i + 1) * 10,
            samples[samples.len() - 1] as f64 / 1e6,
            m.us(0.99)
        );
    }
    Ok(samples)
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

/// `docs/BENCHMARKS.md`: each figure against its target, then the raw numbers.
fn report(r: &Value) -> String {
    let mut md = String::new();
    let c = &r["closed_loop"];
    let o = &r["open_loop"];
    let st = &r["streaming"];
    let h = &r["held_streams"];
    let added = |q: &str, who: &str| f(&o[q][who]) - f(&o[q]["direct"]);
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
    let pass = |ok: bool| if ok { "✅" } else { "❌" };
    let _ = writeln!(md, "# Benchmarks\n");
    let _ = writeln!(
        md,
        "Generated by `bench/run`{}. Machine: {}. The gateway and the bare proxy each run on core 0 \
         (one at a time under load); the fake upstream and the load generator share core 1. The \
         gateway runs as users run it: release build, SQLite, key auth, per-key rate limiting \
         (an RPM too high to trip), credit reservation, usage events and ledger debits, info logs. \
         Closed-loop, open-loop and streaming figures are medians of 3 rounds in which the targets take turns.\n",
        if r["quick"] == true { " --quick" } else { "" },
        r["machine"].as_str().unwrap_or("?")
    );
    let _ = writeln!(
        md,
        "| figure | target | bare proxy | Switchyard | ratio | |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|");
    let cpu_p = f(&c["cpu_us_per_request"]["proxy"]);
    let cpu_g = f(&c["cpu_us_per_request"]["gateway"]);
    let _ = writeln!(
        md,
        "| CPU per non-streaming request | ≤ 1.5 × proxy | {cpu_p:.1} µs | {cpu_g:.1} µs | {:.2} | {} |",
        ratio(cpu_g, cpu_p),
        pass(ratio(cpu_g, cpu_p) <= 1.5)
    );
    for q in ["p50_us", "p99_us"] {
        let (p, g) = (added(q, "proxy"), added(q, "gateway"));
        let _ = writeln!(
            md,
            "| added latency at {} req/s, {} | ≤ 1.5 × proxy | {p:.0} µs | {g:.0} µs | {:.2} | {} |",
            o["rate"],
            q.trim_end_matches("_us"),
            ratio(g, p),
            pass(g <= 1.5 * p.max(1.0))
        );
    }
    let (p, g) = (f(&c["rps"]["proxy"]), f(&c["rps"]["gateway"]));
    let _ = writeln!(
        md,
        "| closed-loop throughput (one core) | ≥ 0.6 × proxy | {p:.0} req/s | {g:.0} req/s | {:.2} | {} |",
        ratio(g, p),
        pass(ratio(g, p) >= 0.6)
    );
    let tt = |who: &str| f(&st["ttfb_p50_us"][who]) - f(&st["ttfb_p50_us"]["direct"]);
    let _ = writeln!(
        md,
        "| streaming TTFB added (p50) | ≤ proxy + 50 µs | {:.0} µs | {:.0} µs | | {} |",
        tt("proxy"),
        tt("gateway"),
        pass(tt("gateway") <= tt("proxy") + 50.0)
    );
    let gap = f(&st["longest_gap_ms"]["gateway"]);
    let _ = writeln!(
        md,
        "| longest gap between chunks sent 1 ms apart, reused connection | no 40 ms stall | {:.1} ms | {gap:.1} ms | | {} |",
        f(&st["longest_gap_ms"]["proxy"]),
        pass(gap < 20.0)
    );
    let idle = f(&r["rss_bytes"]["gateway_idle"]) / 1e6;
    let _ = writeln!(
        md,
        "| RSS idle | ≤ 40 MB | {:.1} MB | {idle:.1} MB | | {} |",
        f(&r["rss_bytes"]["proxy_idle"]) / 1e6,
        pass(idle <= 40.0)
    );
    let per = f(&h["rss_bytes_per_stream"]["gateway"]) / 1024.0;
    let _ = writeln!(
        md,
        "| RSS per open stream ({} held) | ≤ 32 KB | {:.1} KB | {per:.1} KB | | {} |",
        h["count"],
        f(&h["rss_bytes_per_stream"]["proxy"]) / 1024.0,
        pass(per <= 32.0)
    );
    let w = &r["usage_writer"];
    for (key, name, target) in [
        ("sqlite", "SQLite", 20_000.0),
        ("postgres", "Postgres", 10_000.0),
    ] {
        let row = &w[key];
        let figure = if row.is_null() {
            "not reachable".to_owned()
        } else {
            format!(
                "{:.0}/s (queue peak {} at {}/s)",
                f(&row["events_per_sec"]),
                row["steady_max_queued"],
                row["steady_rate"]
            )
        };
        let verdict = if row.is_null() {
            ""
        } else {
            pass(f(&row["events_per_sec"]) >= target)
        };
        let _ = writeln!(
            md,
            "| usage writer, {name} | ≥ {target:.0} settled/s | | {figure} | | {verdict} |"
        );
    }
    let gz = f(&r["gzip_clients"]["cpu_us_per_request"]);
    let _ = writeln!(
        md,
        "| CPU per request, clients sending `Accept-Encoding: gzip, br` | no more than without | | {gz:.1} µs | {:.2} | {} |",
        ratio(gz, cpu_g),
        pass(gz <= cpu_g * 1.1)
    );
    let samples: Vec<f64> = r["soak"]["rss_samples_bytes"]
        .as_array()
        .map(|a| a.iter().map(|v| f(v) / 1e6).collect())
        .unwrap_or_default();
    if samples.len() > 2 {
        let warm = samples[2];
        let last = samples[samples.len() - 1];
        let _ = writeln!(
            md,
            "| RSS over {} s at {} req/s | flat after warm-up | | {warm:.1} → {last:.1} MB | | {} |",
            r["soak"]["secs"],
            r["soak"]["rate"],
            pass(last <= warm * 1.1 + 2.0)
        );
    }
    let _ = writeln!(md, "\n## Raw figures\n");
    let _ = writeln!(md, "| | direct | bare proxy | Switchyard |");
    let _ = writeln!(md, "|---|---|---|---|");
    let row = |md: &mut String, name: &str, v: &Value, unit: &str, scale: f64| {
        let _ = writeln!(
            md,
            "| {name} | {:.1}{unit} | {:.1}{unit} | {:.1}{unit} |",
            f(&v["direct"]) * scale,
            f(&v["proxy"]) * scale,
            f(&v["gateway"]) * scale
        );
    };
    row(
        &mut md,
        "closed loop, req/s (32 connections)",
        &c["rps"],
        "",
        1.0,
    );
    row(
        &mut md,
        "closed loop, CPU per request of that process",
        &c["cpu_us_per_request"],
        " µs",
        1.0,
    );
    row(&mut md, "closed loop, p50", &c["p50_us"], " µs", 1.0);
    row(
        &mut md,
        "open loop 2,000 req/s, p50",
        &o["p50_us"],
        " µs",
        1.0,
    );
    row(
        &mut md,
        "open loop 2,000 req/s, p99",
        &o["p99_us"],
        " µs",
        1.0,
    );
    row(
        &mut md,
        "open loop 2,000 req/s, p99.9",
        &o["p999_us"],
        " µs",
        1.0,
    );
    row(
        &mut md,
        "open loop 2,000 req/s, CPU per request of that process",
        &o["cpu_us_per_request"],
        " µs",
        1.0,
    );
    row(&mut md, "stream TTFB p50", &st["ttfb_p50_us"], " µs", 1.0);
    row(
        &mut md,
        "stream, longest gap between chunks",
        &st["longest_gap_ms"],
        " ms",
        1.0,
    );
    let _ = writeln!(
        md,
        "| RSS per held stream | | {:.1} KB | {:.1} KB |",
        f(&h["rss_bytes_per_stream"]["proxy"]) / 1024.0,
        per
    );
    let _ = writeln!(
        md,
        "\nSoak RSS samples (MB): {}",
        samples
            .iter()
            .map(|s| format!("{s:.1}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    md
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }
}
