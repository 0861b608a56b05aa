//! What the HTTP benchmark samples from `/proc`: a process's resident memory
//! and CPU time, and the machine's load average. Linux only; elsewhere every
//! sample is `None` and the figures say "unavailable".

use std::time::Duration;

/// A process's resident memory.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    /// VmRSS, KiB.
    pub rss_kib: u64,
    /// VmHWM (peak resident set), KiB.
    pub peak_kib: u64,
}

/// VmRSS and VmHWM of a process, from `/proc/<pid>/status`.
pub fn memory(pid: u32) -> Option<Memory> {
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
pub struct Cpu {
    pid: u32,
    start: Option<(f64, f64)>,
}

/// CPU used over a phase, in cores (CPU seconds per second).
pub struct CpuUse {
    /// Server CPU seconds per second.
    pub server_cores: f64,
    /// Server CPU seconds over the phase.
    pub server_seconds: f64,
    /// This process's CPU seconds per second.
    pub client_cores: f64,
}

impl Cpu {
    /// Starts measuring the CPU time of `pid` and of this process.
    pub fn start(pid: u32) -> Cpu {
        Cpu { pid, start: cpu_seconds(&pid.to_string()).zip(cpu_seconds("self")) }
    }

    /// The CPU used since [`Cpu::start`], over `elapsed`.
    pub fn finish(self, elapsed: Duration) -> Option<CpuUse> {
        let (s0, c0) = self.start?;
        let (s1, c1) = cpu_seconds(&self.pid.to_string()).zip(cpu_seconds("self"))?;
        let secs = elapsed.as_secs_f64().max(1e-9);
        Some(CpuUse { server_cores: (s1 - s0) / secs, server_seconds: s1 - s0, client_cores: (c1 - c0) / secs })
    }
}

impl CpuUse {
    /// One line: the server's cores and time per unit, and the load generator's cores.
    pub fn describe(&self, phase: &str, n: u64, unit: &str) -> String {
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
pub fn load_average() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next().map(str::to_string)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn this_process_can_be_sampled() {
        let m = memory(std::process::id()).expect("VmRSS and VmHWM of this process");
        assert!(m.rss_kib > 0 && m.peak_kib >= m.rss_kib, "{m:?}");
        let cpu = Cpu::start(std::process::id());
        let busy: u64 = (0..2_000_000u64).map(std::hint::black_box).sum();
        std::hint::black_box(busy);
        let used = cpu.finish(Duration::from_millis(10)).expect("CPU time of this process");
        assert!(used.server_cores >= 0.0 && used.client_cores >= 0.0);
        assert!(load_average().is_some());
    }
}
