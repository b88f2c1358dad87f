//! What the benchmarks share: one client per child process, its whole-process CPU time
//! and wall time measured over the timed phase, a `result` line the parent collects, and
//! medians over alternating runs.

#![allow(dead_code)] // each benchmark uses its own part

use std::time::{Duration, Instant};

/// The command line, flag by flag: `-h` / `--help` prints the usage; a missing or bad
/// value prints what is wrong and the usage, and exits with status 2.
pub struct Flags {
    args: std::iter::Skip<std::env::Args>,
    usage: &'static str,
}

impl Flags {
    pub fn new(usage: &'static str) -> Flags {
        Flags {
            args: std::env::args().skip(1),
            usage,
        }
    }

    /// The next flag.
    pub fn next_flag(&mut self) -> Option<String> {
        let flag = self.args.next()?;
        if flag == "-h" || flag == "--help" {
            print!("{}", self.usage);
            std::process::exit(0);
        }
        Some(flag)
    }

    /// The value after `flag`.
    pub fn value(&mut self, flag: &str) -> String {
        match self.args.next() {
            Some(v) => v,
            None => self.fail(&format!("{flag} needs a value")),
        }
    }

    /// The number after `flag`.
    pub fn num(&mut self, flag: &str) -> u64 {
        let v = self.value(flag);
        v.parse()
            .unwrap_or_else(|_| self.fail(&format!("{flag}: not a number: {v}")))
    }

    pub fn fail(&self, what: &str) -> ! {
        eprintln!("{what}\n{}", self.usage);
        std::process::exit(2)
    }
}

/// What one client measured.
#[derive(Debug, Clone, Copy, Default)]
pub struct Measure {
    pub records: u64,
    pub delivered: u64,
    pub failed: u64,
    pub wall: Duration,
    pub user: Duration,
    pub sys: Duration,
}

impl Measure {
    pub fn cpu(&self) -> Duration {
        self.user + self.sys
    }

    pub fn line(&self) -> String {
        format!(
            "result records={} delivered={} failed={} wall_ns={} user_ns={} sys_ns={}",
            self.records,
            self.delivered,
            self.failed,
            self.wall.as_nanos(),
            self.user.as_nanos(),
            self.sys.as_nanos()
        )
    }

    pub fn parse(text: &str) -> Option<Measure> {
        let line = text.lines().find(|l| l.starts_with("result "))?;
        let field = |name: &str| -> Option<u64> {
            line.split(' ')
                .find_map(|f| f.strip_prefix(name)?.strip_prefix('='))?
                .parse()
                .ok()
        };
        Some(Measure {
            records: field("records")?,
            delivered: field("delivered")?,
            failed: field("failed")?,
            wall: Duration::from_nanos(field("wall_ns")?),
            user: Duration::from_nanos(field("user_ns")?),
            sys: Duration::from_nanos(field("sys_ns")?),
        })
    }
}

/// The process's user and system CPU time so far.
pub fn rusage() -> (Duration, Duration) {
    // SAFETY: getrusage only writes the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    (tv(usage.ru_utime), tv(usage.ru_stime))
}

/// This thread's CPU time.
pub fn thread_cpu() -> Duration {
    // SAFETY: clock_gettime only writes the struct it is given.
    let ts = unsafe {
        let mut ts: libc::timespec = std::mem::zeroed();
        libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts);
        ts
    };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Measures `phase` (which returns delivered and failed counts).
pub fn measure(records: u64, phase: impl FnOnce() -> (u64, u64)) -> Measure {
    let (user0, sys0) = rusage();
    let start = Instant::now();
    let (delivered, failed) = phase();
    let wall = start.elapsed();
    let (user1, sys1) = rusage();
    Measure {
        records,
        delivered,
        failed,
        wall,
        user: user1.saturating_sub(user0),
        sys: sys1.saturating_sub(sys0),
    }
}

pub fn report(name: &str, m: &Measure, size: usize) -> String {
    let secs = m.wall.as_secs_f64();
    format!(
        "{name:<8} {:>10.0} rec/s {:>7.1} MB/s  wall {:>7.3} s  CPU {:>7.3} s (user {:.3} sys {:.3})  {:>6.3} us/rec  delivered {} failed {}",
        m.records as f64 / secs,
        (m.records * size as u64) as f64 / secs / 1e6,
        secs,
        m.cpu().as_secs_f64(),
        m.user.as_secs_f64(),
        m.sys.as_secs_f64(),
        m.cpu().as_secs_f64() * 1e6 / m.records as f64,
        m.delivered,
        m.failed
    )
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Runs every client `runs` times, alternating, each in a child process started by
/// `spawn`; prints each run; exits the process if a child fails.
pub fn run_clients(
    clients: &[String],
    runs: usize,
    size: usize,
    spawn: impl Fn(&str) -> std::io::Result<std::process::Output>,
) -> Vec<(String, Vec<Measure>)> {
    let mut all: Vec<(String, Vec<Measure>)> =
        clients.iter().map(|c| (c.clone(), Vec::new())).collect();
    for run in 1..=runs {
        for (client, measures) in &mut all {
            let out = spawn(client).expect("run the child");
            let stdout = String::from_utf8_lossy(&out.stdout);
            let Some(m) = Measure::parse(&stdout).filter(|_| out.status.success()) else {
                eprintln!(
                    "{client} failed ({}):\n{stdout}\n{}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                );
                std::process::exit(1);
            };
            println!("run {run} {}", report(client, &m, size));
            if client == "core" {
                println!(
                    "run {run} core     {:.1} ns/rec wall, {:.1} ns/rec CPU",
                    m.wall.as_nanos() as f64 / m.records as f64,
                    m.cpu().as_nanos() as f64 / m.records as f64
                );
            }
            measures.push(m);
        }
    }
    all
}

/// The medians per client, as a Markdown table.
pub fn print_medians(all: &[(String, Vec<Measure>)], runs: usize, size: usize) {
    println!("median of {runs} run(s):");
    println!("| client | records/s | MB/s | CPU s (user+sys) | CPU us/record | wall ns/record |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for (client, ms) in all {
        let of = |f: &dyn Fn(&Measure) -> f64| median(ms.iter().map(f).collect());
        let rate = of(&|m| m.records as f64 / m.wall.as_secs_f64());
        let mbs = of(&|m| (m.records * size as u64) as f64 / m.wall.as_secs_f64() / 1e6);
        let cpu = of(&|m| m.cpu().as_secs_f64());
        let per = of(&|m| m.cpu().as_secs_f64() * 1e6 / m.records as f64);
        let wall_ns = of(&|m| m.wall.as_nanos() as f64 / m.records as f64);
        println!("| {client} | {rate:.0} | {mbs:.1} | {cpu:.3} | {per:.3} | {wall_ns:.1} |");
    }
}
