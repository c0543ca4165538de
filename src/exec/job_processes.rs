//! A job's processes on its host, tracked as GitHub's runner tracks them: every process
//! the job starts carries `RUNNER_TRACKING_ID=<the job's own id>` in its environment,
//! which a background child keeps through `&`, `nohup`, `setsid` or a new process
//! group; when the job ends, every process of the host that carries it is killed and
//! the job's `_temp` (its wrapper scripts hold secrets) is wiped.
//!
//! This is the farm's one notion of "the job's processes" on its host (DESIGN.md): what
//! else must know them (a step kept running across a lost link) builds on it.

use super::shell::shell_quote;
use super::ssh::{Session, SshError};

/// The variable that marks a job's processes, as on GitHub.
pub const TRACKING_VARIABLE: &str = "RUNNER_TRACKING_ID";

/// How many times the host's processes are scanned at the end of a job: a process
/// that forks while it is being killed leaves a child the next scan finds.
const SCAN_ROUNDS: u32 = 10;

/// The processes one job starts on its host.
#[derive(Debug, Clone)]
pub struct JobProcesses {
    tracking_id: String,
}

/// A process killed at the end of its job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orphan {
    pub pid: u32,
    /// Its command name (`/proc/PID/comm`).
    pub name: String,
}

impl JobProcesses {
    /// A new job's processes, with an id no other job has.
    pub fn new() -> JobProcesses {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).expect("the system's random source");
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        JobProcesses { tracking_id: format!("metalfarm_{hex}") }
    }

    /// The value of [`TRACKING_VARIABLE`] in the job's processes.
    pub fn tracking_id(&self) -> &str {
        &self.tracking_id
    }

    /// `command` (a shell command line) run as one of the job's processes: the
    /// variable exported first, so whatever `command` starts inherits it.
    pub fn tracked(&self, command: &str) -> String {
        format!("{TRACKING_VARIABLE}={}; export {TRACKING_VARIABLE}; {command}", self.tracking_id)
    }

    /// Ends the job on its host: every process that carries the job's id is killed
    /// (SIGKILL, as GitHub's runner does), then `temp` is removed. Returns the
    /// processes killed.
    pub async fn end(&self, session: &Session, temp: &str) -> Result<Vec<Orphan>, SshError> {
        let out = session.output(&end_script(&self.tracking_id, temp)).await?;
        if !out.status.success() {
            return Err(SshError::Protocol {
                address: session.address().to_owned(),
                message: format!(
                    "cannot end the job's processes or remove {temp}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            });
        }
        Ok(parse_killed(&String::from_utf8_lossy(&out.stdout)))
    }
}

impl Default for JobProcesses {
    fn default() -> JobProcesses {
        JobProcesses::new()
    }
}

/// The `sh` script that kills the job's processes and removes its `_temp`: each round
/// lists the processes whose environment holds `VAR=id` exactly (`grep -z`: the
/// environment is NUL-separated) and kills the new ones, until a round finds none.
/// Prints `PID NAME` for each process killed.
fn end_script(tracking_id: &str, temp: &str) -> String {
    format!(
        "marker={marker}\n\
         killed=' '\n\
         round=0\n\
         while [ $round -lt {SCAN_ROUNDS} ]; do\n\
         \x20 round=$((round + 1))\n\
         \x20 found=\n\
         \x20 for file in $(grep -lsxzF -e \"$marker\" /proc/[0-9]*/environ); do\n\
         \x20   pid=${{file#/proc/}}; pid=${{pid%/environ}}\n\
         \x20   case \"$killed\" in *\" $pid \"*) continue ;; esac\n\
         \x20   name=$(cat /proc/$pid/comm 2>/dev/null)\n\
         \x20   kill -KILL \"$pid\" 2>/dev/null && printf '%s %s\\n' \"$pid\" \"$name\"\n\
         \x20   killed=\"$killed$pid \"\n\
         \x20   found=1\n\
         \x20 done\n\
         \x20 [ -n \"$found\" ] || break\n\
         done\n\
         rm -rf -- {temp}\n",
        marker = shell_quote(&format!("{TRACKING_VARIABLE}={tracking_id}")),
        temp = shell_quote(temp),
    )
}

fn parse_killed(stdout: &str) -> Vec<Orphan> {
    stdout
        .lines()
        .filter_map(|line| {
            let (pid, name) = line.split_once(' ')?;
            Some(Orphan { pid: pid.parse().ok()?, name: name.to_owned() })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_job_has_its_own_id_and_its_processes_carry_it() {
        let (a, b) = (JobProcesses::new(), JobProcesses::new());
        assert_ne!(a.tracking_id(), b.tracking_id());
        assert!(a.tracking_id().starts_with("metalfarm_") && a.tracking_id().len() == 42);
        let command = a.tracked("echo $$ > /t/p; exec sh x");
        assert_eq!(
            command,
            format!(
                "RUNNER_TRACKING_ID={}; export RUNNER_TRACKING_ID; echo $$ > /t/p; exec sh x",
                a.tracking_id()
            )
        );
    }

    #[test]
    fn the_end_script_matches_the_whole_variable_and_removes_temp() {
        let script = end_script("metalfarm_00", "/root/metalfarm-work/_temp");
        assert!(script.starts_with("marker=RUNNER_TRACKING_ID=metalfarm_00\n"), "{script}");
        assert!(script.contains("grep -lsxzF -e \"$marker\" /proc/[0-9]*/environ"), "{script}");
        assert!(script.ends_with("rm -rf -- /root/metalfarm-work/_temp\n"), "{script}");
        assert_eq!(
            parse_killed("12 sleep\n40 my prog\nnoise\n"),
            vec![Orphan { pid: 12, name: "sleep".into() }, Orphan { pid: 40, name: "my prog".into() }]
        );
    }
}
