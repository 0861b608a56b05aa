//! `custos bench http`: loads the real HTTP server over loopback.
//!
//! The server is a child process of this binary (`custos serve` on a temporary
//! data directory, on a port the kernel picks), so its resident memory is read
//! from `/proc/<pid>/status` apart from the load generator. The load generator
//! runs on a tokio runtime in this process and speaks keep-alive HTTP/1.1
//! (hyper's client connections), with an admin key made by `custos key create`.
//!
//! Phases, one printed line per figure:
//! 1. setup: `--subjects` subjects (`POST /v1/subjects` over several
//!    connections) and one `contact.email` value each (`POST /v1/ingest`);
//! 2. reads: `--connections` connections for `--seconds`, each looping
//!    `GET /v1/subjects/{random id}/data/contact.email?purpose=provide_offerings`
//!    (decided, decrypted and audited by the server); requests/s and latency
//!    percentiles; every response must be 200 with the subject's value;
//! 3. ingestion: `--ingest-items` new values for the existing subjects in
//!    `--batch`-line NDJSON requests, a few in flight; items/s, and every
//!    summary's `written` must equal the lines sent;
//! 4. memory: the server's VmRSS (and peak) after ingestion.
//!
//! Any failed request makes the command fail after the figures are printed.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::bench::XorShift;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;

use crate::cli::{Global, HttpBenchArgs};

const PURPOSE: &str = "provide_offerings";
const SOURCE: &str = "provided";
const JURISDICTION: &str = "california";
const READ_CATEGORY: &str = "contact.email";
/// Categories the ingestion phase writes (all allowed for `provide_offerings`, source `provided`).
const INGEST_CATEGORIES: &[&str] = &["contact.name", "contact.phone", "contact.address", "contact.email"];
/// Ingestion requests in flight.
const INGEST_IN_FLIGHT: usize = 3;
/// Connections used to create the subjects.
const SETUP_CONNECTIONS: usize = 8;
/// How long the server may take to print its address.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the server may take to stop after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs the HTTP benchmarks.
pub fn run(global: &Global, args: &HttpBenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.connections >= 1, "--connections must be at least 1");
    anyhow::ensure!(args.seconds >= 1, "--seconds must be at least 1");
    anyhow::ensure!(args.subjects >= 1, "--subjects must be at least 1");
    anyhow::ensure!(args.batch >= 1, "--batch must be at least 1");

    let exe = std::env::current_exe().context("cannot find this program's path to start the server")?;
    let dir = crate::master_key::private_temp_dir().context("cannot create a temporary directory")?;
    let key = create_admin_key(&exe, global, dir.path())?;
    // Declared after `dir`, so it is dropped (stopped) before the directory is removed.
    let mut server = Server::start(&exe, global, dir.path())?;
    let target = Arc::new(Target {
        addr: server.addr,
        host: HeaderValue::from_str(&server.addr.to_string()).context("bad server address")?,
        bearer: HeaderValue::from_str(&format!("Bearer {key}")).context("the API key is not a valid header value")?,
    });
    println!(
        "custos bench http: server pid {} on http://{}, data in {}, {} cores{}; load generator in this process",
        server.pid(),
        server.addr,
        dir.path().display(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        load_average().map_or_else(String::new, |l| format!(" (load average {l})"))
    );

    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the runtime")?;
    // Issue targets: 100,000 items/s on the embedded store, 50,000 on PostgreSQL.
    let ingest_target = if global.database.is_some() { "50,000" } else { "100,000" };
    let outcome = runtime.block_on(bench(&target, args, server.pid(), ingest_target));
    drop(runtime);

    let stopped = server.stop();
    let failures = match outcome {
        Ok(failures) => failures,
        Err(e) => anyhow::bail!("{e:#}\n{}", server.log_tail()),
    };
    match stopped {
        Ok(status) if status.success() => {}
        Ok(status) => anyhow::bail!("the server exited with {status} after SIGTERM\n{}", server.log_tail()),
        Err(e) => return Err(e),
    }
    if !failures.is_empty() {
        anyhow::bail!("some requests failed:\n  {}", failures.join("\n  "));
    }
    Ok(())
}

/// The phases; returns the failures to report (an `Err` stops the benchmark early).
async fn bench(
    target: &Arc<Target>,
    args: &HttpBenchArgs,
    pid: u32,
    ingest_target: &str,
) -> anyhow::Result<Vec<String>> {
    let mut failures = Vec::new();

    // 1. Setup: subjects, then one value each.
    let t = Instant::now();
    let errors = create_subjects(target, args.subjects).await?;
    let took = t.elapsed();
    if let Some(first) = errors.first {
        anyhow::bail!("{} of {} subjects were not created; first: {first}", errors.count, args.subjects);
    }
    let values =
        ingest(target, args.subjects, args.batch, Arc::new(|k: usize, out: &mut String| initial_line(k, out))).await?;
    if let Some(first) = values.errors.first {
        anyhow::bail!("setting the first values failed ({} errors); first: {first}", values.errors.count);
    }
    println!(
        "setup: {} subjects in {:.2} s ({}/s, POST /v1/subjects over {} connections), {} values in {:.2} s",
        thousands(args.subjects as u64),
        took.as_secs_f64(),
        thousands(rate(args.subjects, took) as u64),
        SETUP_CONNECTIONS.min(args.subjects),
        thousands(args.subjects as u64),
        values.elapsed.as_secs_f64()
    );
    let rss_setup = memory(pid);

    // 2. Purpose-checked reads.
    let cpu = Cpu::start(pid);
    let reads = read_load(target, args).await?;
    let cpu = cpu.finish(reads.elapsed);
    let mut lat = reads.lat_ns;
    lat.sort_unstable();
    let ok = reads.statuses.get(&200).copied().unwrap_or(0);
    let total: u64 = reads.statuses.values().sum();
    println!(
        "http reads (GET one value: auth, decide, decrypt, audit; {} connections, {:.1} s): {} req/s, p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms (target 20,000 req/s, p99 under 5 ms)",
        args.connections,
        reads.elapsed.as_secs_f64(),
        thousands(rate(total as usize, reads.elapsed) as u64),
        pct_ms(&lat, 50.0),
        pct_ms(&lat, 99.0),
        pct_ms(&lat, 99.9),
        pct_ms(&lat, 100.0)
    );
    if let Some(cpu) = cpu {
        println!("  {}", cpu.describe("reads", total, "request"));
    }
    if ok != total || reads.errors.count > 0 {
        let by_status: Vec<String> = reads.statuses.iter().map(|(s, n)| format!("{s}: {}", thousands(*n))).collect();
        println!("  responses by status: {}", by_status.join(", "));
    }
    if let Some(first) = &reads.errors.first {
        failures.push(format!("{} of {} reads failed; first: {first}", reads.errors.count, total));
    }
    let rss_reads = memory(pid);

    // 3. Ingestion.
    let mut ingested = 0;
    if args.ingest_items > 0 {
        let subjects = args.subjects;
        let cpu = Cpu::start(pid);
        let ing = ingest(
            target,
            args.ingest_items,
            args.batch,
            Arc::new(move |k: usize, out: &mut String| ingest_line(k, subjects, out)),
        )
        .await?;
        println!(
            "http ingestion ({} items in {}-line NDJSON batches, {} in flight, {} categories): {:.2} s, {} items/s (target {ingest_target})",
            thousands(args.ingest_items as u64),
            thousands(args.batch as u64),
            INGEST_IN_FLIGHT,
            INGEST_CATEGORIES.len(),
            ing.elapsed.as_secs_f64(),
            thousands(rate(ing.written as usize, ing.elapsed) as u64)
        );
        if let Some(cpu) = cpu.finish(ing.elapsed) {
            println!("  {}", cpu.describe("ingestion", ing.written, "item"));
        }
        ingested = ing.written;
        if let Some(first) = &ing.errors.first {
            failures.push(format!(
                "{} ingestion requests failed ({} of {} items written); first: {first}",
                ing.errors.count,
                thousands(ing.written),
                thousands(args.ingest_items as u64)
            ));
        }
    }

    // 4. Memory.
    match (memory(pid), rss_setup, rss_reads) {
        (Some(after), Some(setup), Some(reads)) => println!(
            "server memory after ingesting {} items: RSS {:.1} MiB, peak {:.1} MiB (after setup {:.1} MiB, after reads {:.1} MiB) (target under 150 MiB)",
            thousands(ingested),
            mib(after.rss_kib),
            mib(after.peak_kib),
            mib(setup.rss_kib),
            mib(reads.rss_kib)
        ),
        _ => println!("server memory: unavailable (no /proc/{pid}/status)"),
    }
    Ok(failures)
}

// ---------------------------------------------------------------------------
// The server process.

/// `custos serve` in a child process.
struct Server {
    child: Child,
    addr: SocketAddr,
    log: std::path::PathBuf,
    stopped: Option<ExitStatus>,
}

impl Server {
    /// Starts `custos --data-dir DIR serve --listen 127.0.0.1:0` and waits for its address.
    fn start(exe: &Path, global: &Global, dir: &Path) -> anyhow::Result<Server> {
        let log = dir.join("server.log");
        let log_file = std::fs::File::create(&log).context("cannot create the server's log file")?;
        let mut cmd = Command::new(exe);
        cmd.args(global_args(global, dir)).args(["serve", "--listen", "127.0.0.1:0"]);
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::from(log_file));
        let mut child = cmd.spawn().with_context(|| format!("cannot start {} serve", exe.display()))?;
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            let _ = child.wait();
            anyhow::bail!("the server's stdout is not piped");
        };
        let (tx, rx) = std::sync::mpsc::channel();
        // Reads the address line, then drains stdout so the server never blocks on it.
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.trim().strip_prefix("listening on http://")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(rest.parse::<SocketAddr>().map_err(|e| format!("bad address `{rest}`: {e}")));
                }
            }
            if let Some(tx) = tx {
                let _ = tx.send(Err("the server exited before printing its address".to_string()));
            }
        });
        let mut server = Server { child, addr: SocketAddr::from(([127, 0, 0, 1], 0)), log, stopped: None };
        match rx.recv_timeout(START_TIMEOUT) {
            Ok(Ok(addr)) => {
                server.addr = addr;
                Ok(server)
            }
            Ok(Err(e)) => Err(anyhow::anyhow!("{e}\n{}", server.log_tail())),
            Err(_) => Err(anyhow::anyhow!(
                "the server did not print `listening on http://…` within {} s\n{}",
                START_TIMEOUT.as_secs(),
                server.log_tail()
            )),
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits for the exit (killing the server if it hangs).
    fn stop(&mut self) -> anyhow::Result<ExitStatus> {
        if let Some(status) = self.stopped {
            return Ok(status);
        }
        if let Some(status) = self.child.try_wait().context("cannot wait for the server")? {
            self.stopped = Some(status);
            return Ok(status);
        }
        terminate(&mut self.child);
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().context("cannot wait for the server")? {
                self.stopped = Some(status);
                return Ok(status);
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let status = self.child.wait().context("cannot wait for the server")?;
                self.stopped = Some(status);
                anyhow::bail!("the server did not stop within {} s of SIGTERM; killed", STOP_TIMEOUT.as_secs());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The last lines of the server's log, for error messages.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = &lines[lines.len().saturating_sub(10)..];
        if tail.is_empty() {
            "(the server logged nothing)".to_string()
        } else {
            format!("server log ({}), last lines:\n{}", self.log.display(), tail.join("\n"))
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

#[cfg(unix)]
fn terminate(child: &mut Child) {
    // An error means the server is already gone; the wait that follows settles it.
    let _ = rustix::process::kill_process(rustix::process::Pid::from_child(child), rustix::process::Signal::TERM);
}

#[cfg(not(unix))]
fn terminate(child: &mut Child) {
    let _ = child.kill();
}

/// `--data-dir DIR`, the policy and the database in force, for the child commands.
fn global_args(global: &Global, dir: &Path) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = vec!["--data-dir".into(), dir.into()];
    if let Some(policy) = &global.policy {
        let policy = std::path::absolute(policy).unwrap_or_else(|_| policy.clone());
        args.push("--policy".into());
        args.push(policy.into());
    }
    if let Some(url) = &global.database {
        args.push("--database".into());
        args.push(url.into());
    }
    for (flag, file) in [
        ("--master-key-file", &global.master_key_file),
        ("--previous-master-key-file", &global.previous_master_key_file),
    ] {
        if let Some(file) = file {
            args.push(flag.into());
            args.push(std::path::absolute(file).unwrap_or_else(|_| file.clone()).into());
        }
    }
    args
}

/// `custos --data-dir DIR key create --role admin`; returns the key.
fn create_admin_key(exe: &Path, global: &Global, dir: &Path) -> anyhow::Result<String> {
    let out = Command::new(exe)
        .args(global_args(global, dir))
        .args(["key", "create", "--role", "admin"])
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {} key create", exe.display()))?;
    anyhow::ensure!(
        out.status.success(),
        "`custos key create --role admin` failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let key = String::from_utf8(out.stdout).context("the API key is not UTF-8")?.trim().to_string();
    anyhow::ensure!(!key.is_empty(), "`custos key create` printed no key");
    Ok(key)
}

#[derive(Debug, Clone, Copy)]
struct Memory {
    rss_kib: u64,
    peak_kib: u64,
}

/// VmRSS and VmHWM of a process, from `/proc/<pid>/status`.
fn memory(pid: u32) -> Option<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().strip_suffix("kB"))
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    Some(Memory { rss_kib: field("VmRSS:")?, peak_kib: field("VmHWM:")? })
}

/// CPU time of the server and of this process over a phase.
struct Cpu {
    pid: u32,
    start: Option<(f64, f64)>,
}

/// CPU used over a phase, in cores (CPU seconds per second).
struct CpuUse {
    server_cores: f64,
    server_seconds: f64,
    client_cores: f64,
}

impl Cpu {
    fn start(pid: u32) -> Cpu {
        Cpu { pid, start: cpu_seconds(&pid.to_string()).zip(cpu_seconds("self")) }
    }

    fn finish(self, elapsed: Duration) -> Option<CpuUse> {
        let (s0, c0) = self.start?;
        let (s1, c1) = cpu_seconds(&self.pid.to_string()).zip(cpu_seconds("self"))?;
        let secs = elapsed.as_secs_f64().max(1e-9);
        Some(CpuUse { server_cores: (s1 - s0) / secs, server_seconds: s1 - s0, client_cores: (c1 - c0) / secs })
    }
}

impl CpuUse {
    fn describe(&self, phase: &str, n: u64, unit: &str) -> String {
        format!(
            "CPU during {phase}: server {:.2} cores ({:.1} us per {unit}), load generator {:.2} cores",
            self.server_cores,
            self.server_seconds / (n.max(1) as f64) * 1e6,
            self.client_cores
        )
    }
}

/// User plus system CPU seconds of `/proc/<who>/stat` (`who`: a pid or `self`).
fn cpu_seconds(who: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{who}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at field 3, `state`.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / clock_ticks() as f64)
}

#[cfg(unix)]
fn clock_ticks() -> u64 {
    rustix::param::clock_ticks_per_second().max(1)
}

#[cfg(not(unix))]
fn clock_ticks() -> u64 {
    100
}

/// The one-minute load average, for reading noisy figures.
fn load_average() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next().map(str::to_string)
}

// ---------------------------------------------------------------------------
// The client.

/// Where requests go, and as whom.
struct Target {
    addr: SocketAddr,
    host: HeaderValue,
    bearer: HeaderValue,
}

/// One keep-alive HTTP/1.1 connection.
struct Conn {
    sender: SendRequest<Full<Bytes>>,
    target: Arc<Target>,
}

impl Conn {
    async fn open(target: &Arc<Target>) -> anyhow::Result<Conn> {
        let stream = tokio::net::TcpStream::connect(target.addr)
            .await
            .with_context(|| format!("cannot connect to {}", target.addr))?;
        stream.set_nodelay(true).context("cannot set TCP_NODELAY")?;
        let (sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.context("HTTP handshake failed")?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Conn { sender, target: target.clone() })
    }

    /// Sends one request and reads the whole response.
    async fn send(
        &mut self,
        method: Method,
        uri: &str,
        content_type: Option<&'static str>,
        body: Bytes,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header(HOST, self.target.host.clone())
            .header(AUTHORIZATION, self.target.bearer.clone());
        if let Some(ct) = content_type {
            req = req.header(CONTENT_TYPE, HeaderValue::from_static(ct));
        }
        let req = req.body(Full::new(body)).context("cannot build a request")?;
        self.sender.ready().await.context("the connection closed")?;
        let resp = self.sender.send_request(req).await.context("the request failed")?;
        let status = resp.status();
        let body = resp.into_body().collect().await.context("cannot read a response body")?.to_bytes();
        Ok((status, body))
    }
}

/// A count of failures and the first one's description.
#[derive(Debug, Default)]
struct Errors {
    count: u64,
    first: Option<String>,
}

impl Errors {
    fn add(&mut self, describe: impl FnOnce() -> String) {
        self.count += 1;
        if self.first.is_none() {
            self.first = Some(describe());
        }
    }

    fn merge(&mut self, other: Errors) {
        self.count += other.count;
        if self.first.is_none() {
            self.first = other.first;
        }
    }
}

/// A response body for an error message (problem+json never carries values).
fn shown(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.chars().count() > 300 { format!("{}…", text.chars().take(300).collect::<String>()) } else { text.into() }
}

fn subject_id(i: usize) -> String {
    format!("bench-{i:07}")
}

/// The value setup stores in `contact.email` for subject `i`.
fn initial_email(i: usize) -> String {
    format!("bench-{i:07}@example.com")
}

/// Creates the subjects over several connections.
async fn create_subjects(target: &Arc<Target>, n: usize) -> anyhow::Result<Errors> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..SETUP_CONNECTIONS.min(n) {
        let mut conn = Conn::open(target).await?;
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let mut errors = Errors::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let body =
                    format!(r#"{{"id":"{}","jurisdiction":"{JURISDICTION}","region":"us-east-1"}}"#, subject_id(i));
                match conn.send(Method::POST, "/v1/subjects", Some("application/json"), Bytes::from(body)).await {
                    Ok((StatusCode::CREATED, _)) => {}
                    Ok((status, body)) => errors.add(|| format!("POST /v1/subjects: {status}: {}", shown(&body))),
                    Err(e) => {
                        errors.add(|| format!("POST /v1/subjects: {e:#}"));
                        break;
                    }
                }
            }
            errors
        }));
    }
    let mut errors = Errors::default();
    for task in tasks {
        errors.merge(task.await.context("a setup task failed")?);
    }
    Ok(errors)
}

/// What the read load saw.
struct ReadTally {
    lat_ns: Vec<u64>,
    statuses: BTreeMap<u16, u64>,
    errors: Errors,
    elapsed: Duration,
}

/// `--connections` connections looping purpose-checked reads for `--seconds`.
async fn read_load(target: &Arc<Target>, args: &HttpBenchArgs) -> anyhow::Result<ReadTally> {
    let mut conns = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        conns.push(Conn::open(target).await?);
    }
    let subjects = args.subjects;
    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.seconds);
    let mut tasks = Vec::with_capacity(conns.len());
    for (w, mut conn) in conns.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let mut rng = XorShift(0x9e37_79b9_7f4a_7c15 ^ (w as u64 + 1).wrapping_mul(0x2545_f491_4f6c_dd1d));
            let mut tally = ReadTally {
                lat_ns: Vec::with_capacity(1 << 14),
                statuses: BTreeMap::new(),
                errors: Errors::default(),
                elapsed: Duration::ZERO,
            };
            let mut uri = String::with_capacity(96);
            while Instant::now() < deadline {
                let i = (rng.next() % subjects as u64) as usize;
                uri.clear();
                let _ = write!(uri, "/v1/subjects/{}/data/{READ_CATEGORY}?purpose={PURPOSE}", subject_id(i));
                let t = Instant::now();
                match conn.send(Method::GET, &uri, None, Bytes::new()).await {
                    Ok((status, body)) => {
                        tally.lat_ns.push(t.elapsed().as_nanos() as u64);
                        *tally.statuses.entry(status.as_u16()).or_default() += 1;
                        if status != StatusCode::OK {
                            tally.errors.add(|| format!("GET {uri}: {status}: {}", shown(&body)));
                        } else if !contains(&body, initial_email(i).as_bytes()) {
                            tally
                                .errors
                                .add(|| format!("GET {uri}: 200 without the subject's value: {}", shown(&body)));
                        }
                    }
                    Err(e) => {
                        tally.errors.add(|| format!("GET {uri}: {e:#}"));
                        match Conn::open(&conn.target).await {
                            Ok(c) => conn = c,
                            Err(e) => {
                                tally.errors.add(|| format!("reconnect: {e:#}"));
                                break;
                            }
                        }
                    }
                }
            }
            tally
        }));
    }
    let mut all =
        ReadTally { lat_ns: Vec::new(), statuses: BTreeMap::new(), errors: Errors::default(), elapsed: Duration::ZERO };
    for task in tasks {
        let t = task.await.context("a read task failed")?;
        all.lat_ns.extend_from_slice(&t.lat_ns);
        for (s, n) in t.statuses {
            *all.statuses.entry(s).or_default() += n;
        }
        all.errors.merge(t.errors);
    }
    all.elapsed = start.elapsed();
    Ok(all)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// Setup line `k`: subject `k`'s first `contact.email`.
fn initial_line(k: usize, out: &mut String) {
    let _ = writeln!(
        out,
        r#"{{"subject":"{}","category":"{READ_CATEGORY}","value":"{}","source":"{SOURCE}","purpose":"{PURPOSE}"}}"#,
        subject_id(k),
        initial_email(k)
    );
}

/// Ingestion line `k`: a new value for subject `k % subjects`, cycling through the categories.
fn ingest_line(k: usize, subjects: usize, out: &mut String) {
    let category = INGEST_CATEGORIES[(k / subjects) % INGEST_CATEGORIES.len()];
    let value = match category {
        "contact.name" => format!("Bench Person {k}"),
        "contact.phone" => format!("+1 555 {:07}", k % 10_000_000),
        "contact.address" => format!("{} Main Street, Springfield", k % 100_000 + 1),
        _ => format!("person{k}@example.com"),
    };
    let _ = writeln!(
        out,
        r#"{{"subject":"{}","category":"{category}","value":"{value}","source":"{SOURCE}","purpose":"{PURPOSE}"}}"#,
        subject_id(k % subjects)
    );
}

/// What an ingestion run saw.
struct IngestTally {
    written: u64,
    errors: Errors,
    elapsed: Duration,
}

type LineFn = Arc<dyn Fn(usize, &mut String) + Send + Sync>;

/// POSTs `total` lines (made by `line`) in `batch`-line NDJSON requests, a few in flight.
async fn ingest(target: &Arc<Target>, total: usize, batch: usize, line: LineFn) -> anyhow::Result<IngestTally> {
    let batches = total.div_ceil(batch);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..INGEST_IN_FLIGHT.min(batches) {
        let mut conn = Conn::open(target).await?;
        let next = next.clone();
        let line = line.clone();
        tasks.push(tokio::spawn(async move {
            let mut written = 0u64;
            let mut errors = Errors::default();
            loop {
                let b = next.fetch_add(1, Ordering::Relaxed);
                if b >= batches {
                    break;
                }
                let (from, to) = (b * batch, ((b + 1) * batch).min(total));
                let mut body = String::with_capacity((to - from) * 150);
                for k in from..to {
                    line(k, &mut body);
                }
                let sent = (to - from) as u64;
                match conn.send(Method::POST, "/v1/ingest", Some("application/x-ndjson"), Bytes::from(body)).await {
                    Ok((StatusCode::OK, body)) => match check_summary(&body, sent) {
                        Ok(n) => written += n,
                        Err((n, e)) => {
                            written += n;
                            errors.add(|| format!("POST /v1/ingest (lines {}-{}): {e}", from + 1, to));
                        }
                    },
                    Ok((status, body)) => errors.add(|| format!("POST /v1/ingest: {status}: {}", shown(&body))),
                    Err(e) => {
                        errors.add(|| format!("POST /v1/ingest: {e:#}"));
                        match Conn::open(&conn.target).await {
                            Ok(c) => conn = c,
                            Err(e) => {
                                errors.add(|| format!("reconnect: {e:#}"));
                                break;
                            }
                        }
                    }
                }
            }
            (written, errors)
        }));
    }
    let mut tally = IngestTally { written: 0, errors: Errors::default(), elapsed: Duration::ZERO };
    for task in tasks {
        let (written, errors) = task.await.context("an ingestion task failed")?;
        tally.written += written;
        tally.errors.merge(errors);
    }
    tally.elapsed = start.elapsed();
    Ok(tally)
}

/// Checks an ingestion summary: `written` must equal the lines sent. Returns
/// the lines written, or them with what went wrong.
fn check_summary(body: &[u8], sent: u64) -> Result<u64, (u64, String)> {
    let summary: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| (0, format!("the summary is not JSON: {e}")))?;
    let written = summary.get("written").and_then(serde_json::Value::as_u64).unwrap_or(0);
    if written == sent {
        return Ok(written);
    }
    let first = summary
        .get("results")
        .and_then(serde_json::Value::as_array)
        .and_then(|r| r.iter().find(|x| x.get("status").and_then(serde_json::Value::as_str) != Some("ok")))
        .map_or_else(|| "no line error given".to_string(), |x| shown(x.to_string().as_bytes()));
    Err((written, format!("written {written} of {sent} lines; first rejected: {first}")))
}

// ---------------------------------------------------------------------------
// Figures.

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

/// Percentile `p` of sorted nanosecond latencies, in milliseconds.
fn pct_ms(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    // The nearest rank; the epsilon keeps 99.9 % of 1,000 at rank 999 despite rounding.
    let i = (((p / 100.0) * sorted.len() as f64 - 1e-9).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i] as f64 / 1e6
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// `1234567` as `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn percentiles_pick_the_rank() {
        let v: Vec<u64> = (1..=1000).map(|x| x * 1_000_000).collect();
        assert_eq!(pct_ms(&v, 50.0), 500.0);
        assert_eq!(pct_ms(&v, 99.0), 990.0);
        assert_eq!(pct_ms(&v, 99.9), 999.0);
        assert_eq!(pct_ms(&v, 100.0), 1000.0);
        assert_eq!(pct_ms(&[], 99.0), 0.0);
    }

    #[test]
    fn summaries_must_write_every_line() {
        assert_eq!(check_summary(br#"{"lines":2,"written":2,"rejected":0,"results":[]}"#, 2), Ok(2));
        let bad = br#"{"lines":2,"written":1,"rejected":1,"results":[{"line":1,"status":"ok"},{"line":2,"status":"error","code":"denied"}]}"#;
        let Err((1, msg)) = check_summary(bad, 2) else { panic!("a short summary must fail") };
        assert!(msg.contains("denied"), "{msg}");
    }
}
