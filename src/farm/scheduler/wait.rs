//! Why a job is still waiting, in words a check run can show.

use std::fmt;

/// Why a queued job has no host yet. `Display` is the text users read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitReason {
    /// Jobs it needs have not finished (their workflow job ids).
    Needs { jobs: Vec<String> },
    /// Another job holds its concurrency group.
    ConcurrencyGroup { group: String },
    /// Its matrix runs as many jobs as `max-parallel` allows.
    MaxParallel { max: u32 },
    /// No host in the inventory has all its `runs-on` labels: it waits until one is added.
    NoHost { labels: Vec<String> },
    /// The hosts that could run it are all running jobs or not `ready`.
    HostsBusy { labels: Vec<String>, busy: usize, not_ready: usize },
    /// A host that can run it is free: the next placement takes it (or a better job).
    HostFree { labels: Vec<String> },
}

struct LabelList<'a>(&'a [String]);

impl fmt::Display for LabelList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}]", self.0.join(", "))
    }
}

impl fmt::Display for WaitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitReason::Needs { jobs } => write!(f, "waiting for {}", jobs.join(", ")),
            WaitReason::ConcurrencyGroup { group } => write!(f, "waiting for concurrency group `{group}`"),
            WaitReason::MaxParallel { max } => write!(f, "max-parallel {max} reached"),
            WaitReason::NoHost { labels } => write!(f, "no host has labels {}", LabelList(labels)),
            WaitReason::HostsBusy { labels, busy, not_ready } => {
                let labels = LabelList(labels);
                match (busy, not_ready) {
                    (1, 0) => write!(f, "the only host with labels {labels} is busy"),
                    (n, 0) => write!(f, "all {n} hosts with labels {labels} are busy"),
                    (0, 1) => write!(f, "the only host with labels {labels} is not ready"),
                    (0, n) => write!(f, "all {n} hosts with labels {labels} are not ready"),
                    (b, n) => write!(
                        f,
                        "all {} hosts with labels {labels} are busy or not ready ({b} busy, {n} not ready)",
                        b + n
                    ),
                }
            }
            WaitReason::HostFree { labels } => {
                write!(f, "queued for a host with labels {}", LabelList(labels))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(l: &[&str]) -> Vec<String> {
        l.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn texts() {
        let amd = labels(&["amd64"]);
        let busy =
            |busy, not_ready| WaitReason::HostsBusy { labels: amd.clone(), busy, not_ready }.to_string();
        assert_eq!(busy(3, 0), "all 3 hosts with labels [amd64] are busy");
        assert_eq!(busy(1, 0), "the only host with labels [amd64] is busy");
        assert_eq!(busy(0, 2), "all 2 hosts with labels [amd64] are not ready");
        assert_eq!(busy(0, 1), "the only host with labels [amd64] is not ready");
        assert_eq!(busy(2, 1), "all 3 hosts with labels [amd64] are busy or not ready (2 busy, 1 not ready)");
        assert_eq!(
            WaitReason::NoHost { labels: labels(&["intel64", "hostprovisioning"]) }.to_string(),
            "no host has labels [intel64, hostprovisioning]"
        );
        assert_eq!(
            WaitReason::Needs { jobs: labels(&["build", "lint"]) }.to_string(),
            "waiting for build, lint"
        );
        assert_eq!(
            WaitReason::ConcurrencyGroup { group: "deploy".into() }.to_string(),
            "waiting for concurrency group `deploy`"
        );
        assert_eq!(WaitReason::MaxParallel { max: 2 }.to_string(), "max-parallel 2 reached");
        assert_eq!(WaitReason::HostFree { labels: amd }.to_string(), "queued for a host with labels [amd64]");
    }
}
