//! The server under load: `custos serve` in a child process of the benchmark,
//! on a temporary data directory and a port the kernel picks.

use std::ffi::OsString;
use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

/// How long the server may take to print its address.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the server may take to stop after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// The `custos` program the benchmark starts, and the global options it passes on.
#[derive(Debug, Clone)]
pub struct ServerCommand {
    /// The `custos` binary.
    pub exe: PathBuf,
    /// Global options for every child command besides `--data-dir` (the
    /// policy, the database, the master key files), with absolute paths.
    pub args: Vec<OsString>,
    /// Whether the store is PostgreSQL (for the ingestion target).
    pub postgres: bool,
}

impl ServerCommand {
    /// `--data-dir DIR` and the global options, for the child commands.
    fn global_args(&self, dir: &Path) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec!["--data-dir".into(), dir.into()];
        args.extend(self.args.iter().cloned());
        args
    }

    /// `custos --data-dir DIR key create --role admin`; returns the key.
    pub fn create_admin_key(&self, dir: &Path) -> anyhow::Result<String> {
        let exe = &self.exe;
        let out = Command::new(exe)
            .args(self.global_args(dir))
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
}

/// `custos serve` in a child process.
pub struct Server {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    log: PathBuf,
    stopped: Option<ExitStatus>,
}

impl Server {
    /// Starts `custos --data-dir DIR serve --listen 127.0.0.1:0` and waits for its address.
    pub fn start(command: &ServerCommand, dir: &Path) -> anyhow::Result<Server> {
        let exe = &command.exe;
        let log = dir.join("server.log");
        let log_file = std::fs::File::create(&log).context("cannot create the server's log file")?;
        let mut cmd = Command::new(exe);
        cmd.args(command.global_args(dir)).args(["serve", "--listen", "127.0.0.1:0"]);
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

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits for the exit (killing the server if it hangs).
    pub fn stop(&mut self) -> anyhow::Result<ExitStatus> {
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
    pub fn log_tail(&self) -> String {
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
