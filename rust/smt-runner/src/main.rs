//! axiom-smt-runner: run one solver command with limits, std only.
//!
//! Usage: axiom-smt-runner [--timeout-ms N] [--memory-mb N] -- SOLVER [ARGS...]
//!
//! * the solver runs in a new process group (its own pgid), stdin is /dev/null, its stdout and
//!   stderr are passed through unchanged;
//! * before exec, RLIMIT_AS is set to N MiB (--memory-mb), RLIMIT_CPU to the timeout rounded up
//!   plus 2 s (a backstop) and RLIMIT_CORE to 0;
//! * past the wall-clock timeout the whole group gets SIGTERM, then SIGKILL after 200 ms, and the
//!   leader is reaped; the runner then prints "axiom-smt-runner: timeout" on stderr and exits 124;
//! * otherwise it exits with the solver's status, or 128 + signal when a signal ended it;
//! * usage errors exit 125, a solver that cannot be started exits 127. The runner never panics
//!   on bad input (every argument is parsed and checked).

use std::ffi::c_int;
use std::io::{self, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitCode, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

#[repr(C)]
struct RLimit {
    cur: u64,
    max: u64,
}

const RLIMIT_CPU: c_int = 0;
const RLIMIT_CORE: c_int = 4;
const RLIMIT_AS: c_int = 9;
const SIGTERM: c_int = 15;
const SIGKILL: c_int = 9;

extern "C" {
    fn setrlimit(resource: c_int, rlim: *const RLimit) -> c_int;
    fn kill(pid: c_int, sig: c_int) -> c_int;
}

struct Options {
    timeout: Option<Duration>,
    memory_mb: Option<u64>,
    command: Vec<String>,
}

fn parse_number(flag: &str, value: Option<String>) -> Result<u64, String> {
    let text = value.ok_or_else(|| format!("{flag} needs a value"))?;
    text.parse::<u64>().map_err(|_| format!("{flag}: not a non-negative integer: {text:?}"))
}

fn parse(args: Vec<String>) -> Result<Options, String> {
    let mut it = args.into_iter();
    let mut opts = Options { timeout: None, memory_mb: None, command: Vec::new() };
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--timeout-ms" => {
                let ms = parse_number("--timeout-ms", it.next())?;
                if ms == 0 || ms > 7 * 24 * 3600 * 1000 {
                    return Err(format!("--timeout-ms out of range: {ms}"));
                }
                opts.timeout = Some(Duration::from_millis(ms));
            }
            "--memory-mb" => {
                let mb = parse_number("--memory-mb", it.next())?;
                if mb == 0 || mb > (1 << 30) {
                    return Err(format!("--memory-mb out of range: {mb}"));
                }
                opts.memory_mb = Some(mb);
            }
            "--" => {
                opts.command = it.collect();
                break;
            }
            other => return Err(format!("unknown argument {other:?} (the solver command goes after --)")),
        }
    }
    if opts.command.is_empty() {
        return Err("no solver command after --".to_string());
    }
    Ok(opts)
}

fn kill_group(pgid: c_int, sig: c_int) {
    if pgid > 0 {
        // SAFETY: kill(2) with a negative pid signals the process group; no memory is touched.
        unsafe {
            kill(-pgid, sig);
        }
    }
}

fn run(opts: Options) -> Result<u8, (u8, String)> {
    let mut cmd = Command::new(&opts.command[0]);
    cmd.args(&opts.command[1..]).stdin(Stdio::null()).stdout(Stdio::inherit()).stderr(Stdio::inherit());
    cmd.process_group(0);
    let memory = opts.memory_mb.map(|mb| mb * 1024 * 1024);
    let cpu = opts.timeout.map(|t| t.as_secs() + 2 + u64::from(t.subsec_nanos() > 0));
    // SAFETY: the closure runs in the child between fork and exec and only calls setrlimit(2),
    // which is async-signal-safe; it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if let Some(bytes) = memory {
                let lim = RLimit { cur: bytes, max: bytes };
                if setrlimit(RLIMIT_AS, &lim) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            if let Some(secs) = cpu {
                let lim = RLimit { cur: secs, max: secs + 1 };
                if setrlimit(RLIMIT_CPU, &lim) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            let core = RLimit { cur: 0, max: 0 };
            setrlimit(RLIMIT_CORE, &core);
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| (127, format!("cannot start {:?}: {e}", opts.command[0])))?;
    let pgid = c_int::try_from(child.id()).map_err(|_| (125, "process id out of range".to_string()))?;
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                kill_group(pgid, SIGKILL); // anything the solver left behind in its group
                if let Some(code) = status.code() {
                    return Ok(u8::try_from(code & 0xff).unwrap_or(125));
                }
                let sig = status.signal().unwrap_or(0);
                return Ok(u8::try_from(128 + (sig & 0x7f)).unwrap_or(255));
            }
            Ok(None) => {}
            Err(e) => {
                kill_group(pgid, SIGKILL);
                let _ = child.wait();
                return Err((125, format!("waiting for the solver failed: {e}")));
            }
        }
        if let Some(limit) = opts.timeout {
            if start.elapsed() >= limit {
                kill_group(pgid, SIGTERM);
                let grace = Instant::now();
                while grace.elapsed() < Duration::from_millis(200) {
                    if let Ok(Some(_)) = child.try_wait() {
                        break;
                    }
                    sleep(Duration::from_millis(5));
                }
                kill_group(pgid, SIGKILL);
                let _ = child.wait();
                return Err((124, "timeout".to_string()));
            }
        }
        sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(10));
    }
}

fn main() -> ExitCode {
    let opts = match parse(std::env::args().skip(1).collect()) {
        Ok(o) => o,
        Err(msg) => {
            let _ = writeln!(io::stderr(), "axiom-smt-runner: {msg}");
            return ExitCode::from(125);
        }
    };
    match run(opts) {
        Ok(code) => ExitCode::from(code),
        Err((code, msg)) => {
            let _ = io::stdout().flush();
            let _ = writeln!(io::stderr(), "axiom-smt-runner: {msg}");
            ExitCode::from(code)
        }
    }
}
