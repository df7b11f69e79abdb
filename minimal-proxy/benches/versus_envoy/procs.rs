//! The processes the bench starts (each pinned to one CPU, at a raised priority, killed on
//! drop or when the bench is interrupted) and what it reads about them from `/proc`: resident
//! memory and CPU time.

use std::{
    ffi::OsStr,
    fs::File,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

/// A process this bench started; killed (by its id) when dropped.
pub struct Proc {
    /// What the tables call it.
    pub name: String,
    child: Child,
    /// Its stdout and stderr, for failure messages.
    log: PathBuf,
}

impl Proc {
    /// Starts `program args` pinned to `cpu`, logging to `<dir>/<name>.log`.
    pub fn spawn<I, S>(
        name: &str,
        cpu: usize,
        program: &Path,
        args: I,
        dir: &Path,
    ) -> anyhow::Result<Proc>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let log = dir.join(format!("{name}.log"));
        let out = File::create(&log).with_context(|| format!("create {}", log.display()))?;
        let child = pinned(cpu, program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("start {}", program.display()))?;
        started(child.id());
        Ok(Proc {
            name: name.to_string(),
            child,
            log,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// An error naming the process and, when it has exited, how, with its last log lines.
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        match self.child.try_wait()? {
            None => Ok(()),
            Some(status) => bail!(
                "{} exited ({status}); last lines of {}:\n{}",
                self.name,
                self.log.display(),
                self.log_tail()
            ),
        }
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// Resident memory now, in KiB.
    pub fn rss_kib(&self) -> anyhow::Result<u64> {
        rss_kib(self.pid())
    }

    /// CPU time used so far by every thread: (user, system) seconds.
    pub fn cpu_seconds(&self) -> anyhow::Result<(f64, f64)> {
        cpu_seconds(self.pid())
    }

    /// Samples resident memory every 50 ms until the returned guard is finished.
    pub fn sample_rss(&self) -> RssSampler {
        RssSampler::start(self.pid())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        ended(self.child.id());
    }
}

/// The processes running now, to be killed if the bench is interrupted: they run in sessions
/// of their own (see [`pinned`]), so the terminal's Ctrl-C does not reach them.
static RUNNING: Mutex<Vec<u32>> = Mutex::new(Vec::new());

pub fn started(pid: u32) {
    RUNNING.lock().unwrap_or_else(|e| e.into_inner()).push(pid);
}

pub fn ended(pid: u32) {
    RUNNING
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|p| *p != pid);
}

/// On SIGINT or SIGTERM, kills (by id) every process the bench started and still runs, then
/// exits.
pub fn stop_all_on_interrupt() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut term = {
        let _context = runtime.enter();
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?
    };
    thread::spawn(move || {
        runtime.block_on(async {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        });
        let pids = RUNNING.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for pid in pids {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        eprintln!("versus_envoy: interrupted; stopped the processes it had started");
        std::process::exit(130)
    });
    Ok(())
}

/// The largest resident size seen while it ran.
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    thread: thread::JoinHandle<u64>,
}

impl RssSampler {
    fn start(pid: u32) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = thread::spawn(move || {
            let mut max = 0;
            while !flag.load(Ordering::Relaxed) {
                max = max.max(rss_kib(pid).unwrap_or(0));
                thread::sleep(Duration::from_millis(50));
            }
            max.max(rss_kib(pid).unwrap_or(0))
        });
        RssSampler { stop, thread }
    }

    /// The maximum resident size seen, in KiB.
    pub fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or(0)
    }
}

fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("read /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no VmRSS in /proc/{pid}/status"))
}

fn cpu_seconds(pid: u32) -> anyhow::Result<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("read /proc/{pid}/stat"))?;
    // The command name may contain spaces; the fields after it start with the state (field 3),
    // so utime (field 14) and stime (field 15) are the 12th and 13th after the ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> anyhow::Result<u64> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .with_context(|| format!("malformed /proc/{pid}/stat"))
    };
    let hz = clock_ticks() as f64;
    Ok((ticks(11)? as f64 / hz, ticks(12)? as f64 / hz))
}

/// Per CPU, (busy, total) ticks since boot from `/proc/stat`: busy is everything but idle
/// and iowait.
pub fn cpu_ticks() -> Vec<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    stat.lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .map(|l| {
            let v: Vec<u64> = l
                .split_whitespace()
                .skip(1)
                .take(8)
                .filter_map(|n| n.parse().ok())
                .collect();
            let total: u64 = v.iter().sum();
            let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
            (total - idle, total)
        })
        .collect()
}

/// How busy each CPU was between two [`cpu_ticks`] readings (0.0–1.0).
pub fn cores_busy(before: &[(u64, u64)], after: &[(u64, u64)]) -> Vec<f64> {
    before
        .iter()
        .zip(after)
        .map(|((b0, t0), (b1, t1))| (b1 - b0) as f64 / (t1 - t0).max(1) as f64)
        .collect()
}

/// `sysconf(_SC_CLK_TCK)`, asked of `getconf` once (100 on every Linux this runs on).
fn clock_ticks() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100)
    })
}

/// `program` pinned to `cpu`, in a session of its own whose scheduling group (autogroup) gets
/// niceness -20, and at niceness -20 within it: so that builds running on the same machine
/// (each in its own session, hence its own autogroup, against which a thread's own niceness
/// counts for nothing) take less of the measured cores. At -10, four concurrent compilers
/// still took a quarter of the proxy's core. Only root may raise priority; anyone else runs
/// at the default. `setsid` (not a group leader here), `sh -c exec`, `nice` and `taskset`
/// each exec what follows, so the child's pid is the program's.
pub fn pinned(cpu: usize, program: &Path) -> Command {
    let mut command = Command::new("setsid");
    command
        .args([
            "sh",
            "-c",
            "echo -20 > /proc/self/autogroup 2>/dev/null; exec nice -n -20 taskset -c \"$0\" \"$@\"",
        ])
        .arg(cpu.to_string())
        .arg(program);
    command
}

/// A port free on 127.0.0.1 right now.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Waits until something accepts connections on `127.0.0.1:port`.
pub fn wait_listening(proc: &mut Proc, port: u16, within: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        proc.check_running()?;
        if Instant::now() > deadline {
            bail!(
                "{} is not listening on port {port} after {within:?}",
                proc.name
            );
        }
        thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// The path of `program` on `PATH`, if any.
pub fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    })
}
