//! Label sets and the hosts and jobs that share one.
//!
//! Hosts are grouped by their label set (a *host class*), queued jobs by their
//! `runs-on` set (a *job class*). Which job classes a host class can serve is worked
//! out once, when a class first appears, so a placement looks only at compatible
//! classes and never at single hosts or jobs that could not match.

use std::collections::{BTreeSet, HashMap};

use super::{HostIdx, QueueKey};

pub(super) type ClassIdx = u32;

/// Labels compare case-insensitively (as GitHub's runner labels do): each distinct
/// lower-cased label gets a number, and a label set is its sorted numbers.
#[derive(Default)]
struct Labels {
    ids: HashMap<String, u32>,
}

impl Labels {
    /// The sorted, deduplicated numbers of `labels`, and the labels as first written
    /// (duplicates by case left out), for messages.
    fn set(&mut self, labels: &[String]) -> (Vec<u32>, Vec<String>) {
        let mut ids = Vec::with_capacity(labels.len());
        let mut display = Vec::with_capacity(labels.len());
        for label in labels {
            let lower = label.to_lowercase();
            let next = self.ids.len() as u32;
            let id = *self.ids.entry(lower).or_insert(next);
            if !ids.contains(&id) {
                ids.push(id);
                display.push(label.clone());
            }
        }
        ids.sort_unstable();
        (ids, display)
    }
}

/// Whether `have` (sorted) contains every label of `want` (sorted).
fn includes(have: &[u32], want: &[u32]) -> bool {
    let mut have = have.iter();
    want.iter().all(|w| have.any(|h| h == w))
}

/// The hosts that have one label set.
struct HostClass {
    labels: Vec<u32>,
    /// Available hosts without a job, by index (lowest first: placement is repeatable).
    free: BTreeSet<HostIdx>,
    hosts: usize,
    /// Hosts running a job.
    busy: usize,
    /// Hosts neither running a job nor available (not `ready`).
    down: usize,
    /// The job classes whose labels these hosts have.
    jobs: Vec<ClassIdx>,
}

/// The queued jobs that have one `runs-on` label set.
pub(super) struct JobClass {
    labels: Vec<u32>,
    /// The labels as the first job of the class wrote them.
    pub display: Vec<String>,
    /// Jobs that may take a host now, best first.
    pub queue: BTreeSet<QueueKey>,
    /// The host classes that can run these jobs, the least versatile first, so a job
    /// that could run anywhere leaves the rarer hosts to the jobs that need them.
    hosts: Vec<ClassIdx>,
}

#[derive(Default)]
pub(super) struct Classes {
    labels: Labels,
    hosts: Vec<HostClass>,
    host_index: HashMap<Vec<u32>, ClassIdx>,
    jobs: Vec<JobClass>,
    job_index: HashMap<Vec<u32>, ClassIdx>,
    /// Host classes with at least one free host.
    with_free: BTreeSet<ClassIdx>,
    /// Set when a new class changed how versatile host classes are: each job class's
    /// host order is sorted again before the next placement.
    order_stale: bool,
    /// Per job class, the placement round that last looked at it.
    seen: Vec<u64>,
    round: u64,
}

impl Classes {
    /// The host class of `labels`, created on first use.
    pub fn host_class(&mut self, labels: &[String]) -> ClassIdx {
        let (ids, _) = self.labels.set(labels);
        if let Some(&class) = self.host_index.get(&ids) {
            return class;
        }
        let class = self.hosts.len() as ClassIdx;
        let mut jobs = Vec::new();
        for (j, job_class) in self.jobs.iter_mut().enumerate() {
            if includes(&ids, &job_class.labels) {
                jobs.push(j as ClassIdx);
                job_class.hosts.push(class);
            }
        }
        self.order_stale |= !jobs.is_empty();
        self.host_index.insert(ids.clone(), class);
        self.hosts.push(HostClass { labels: ids, free: BTreeSet::new(), hosts: 0, busy: 0, down: 0, jobs });
        class
    }

    /// The job class of `labels`, created on first use.
    pub fn job_class(&mut self, labels: &[String]) -> ClassIdx {
        let (ids, display) = self.labels.set(labels);
        if let Some(&class) = self.job_index.get(&ids) {
            return class;
        }
        let class = self.jobs.len() as ClassIdx;
        let mut hosts = Vec::new();
        for (h, host_class) in self.hosts.iter_mut().enumerate() {
            if includes(&host_class.labels, &ids) {
                hosts.push(h as ClassIdx);
                host_class.jobs.push(class);
            }
        }
        self.order_stale |= !hosts.is_empty();
        self.job_index.insert(ids.clone(), class);
        self.jobs.push(JobClass { labels: ids, display, queue: BTreeSet::new(), hosts });
        self.seen.push(0);
        class
    }

    pub fn job(&self, class: ClassIdx) -> &JobClass {
        &self.jobs[class as usize]
    }

    pub fn job_mut(&mut self, class: ClassIdx) -> &mut JobClass {
        &mut self.jobs[class as usize]
    }

    pub fn job_classes(&self) -> impl Iterator<Item = &JobClass> {
        self.jobs.iter()
    }

    /// Counts a host in its class, in the state `(available, busy)`.
    pub fn attach(&mut self, class: ClassIdx, host: HostIdx, available: bool, busy: bool) {
        let c = &mut self.hosts[class as usize];
        c.hosts += 1;
        if busy {
            c.busy += 1;
        } else if !available {
            c.down += 1;
        } else {
            c.free.insert(host);
            self.with_free.insert(class);
        }
    }

    /// Undoes [`Classes::attach`] for the host's current state.
    pub fn detach(&mut self, class: ClassIdx, host: HostIdx, available: bool, busy: bool) {
        let c = &mut self.hosts[class as usize];
        c.hosts -= 1;
        if busy {
            c.busy -= 1;
        } else if !available {
            c.down -= 1;
        } else {
            c.free.remove(&host);
            if c.free.is_empty() {
                self.with_free.remove(&class);
            }
        }
    }

    /// The hosts of the host classes that can run `class`: (all, busy, down, free).
    pub fn capacity(&self, class: ClassIdx) -> (usize, usize, usize, usize) {
        self.jobs[class as usize]
            .hosts
            .iter()
            .map(|&h| &self.hosts[h as usize])
            .fold((0, 0, 0, 0), |(all, busy, down, free), c| {
                (all + c.hosts, busy + c.busy, down + c.down, free + c.free.len())
            })
    }

    /// Starts a placement round: the job classes that have queued jobs and a free
    /// host that can run them, each once.
    pub fn candidates(&mut self) -> Vec<ClassIdx> {
        if self.order_stale {
            self.sort_host_orders();
        }
        self.round += 1;
        let mut out = Vec::new();
        for &h in &self.with_free {
            for &j in &self.hosts[h as usize].jobs {
                let seen = &mut self.seen[j as usize];
                if *seen != self.round && !self.jobs[j as usize].queue.is_empty() {
                    *seen = self.round;
                    out.push(j);
                }
            }
        }
        out
    }

    /// The free host a job of `class` should take, if any.
    pub fn free_host_for(&self, class: ClassIdx) -> Option<HostIdx> {
        self.jobs[class as usize].hosts.iter().find_map(|&h| self.hosts[h as usize].free.first().copied())
    }

    fn sort_host_orders(&mut self) {
        let hosts = &self.hosts;
        for job_class in &mut self.jobs {
            job_class.hosts.sort_by_key(|&h| {
                let c = &hosts[h as usize];
                (c.jobs.len(), c.labels.len(), h)
            });
        }
        self.order_stale = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(labels: &[&str]) -> Vec<String> {
        labels.iter().map(|l| l.to_string()).collect()
    }

    #[test]
    fn label_sets_ignore_case_order_and_duplicates() {
        let mut classes = Classes::default();
        let a = classes.job_class(&strings(&["Linux", "amd64", "linux"]));
        let b = classes.job_class(&strings(&["AMD64", "LINUX"]));
        assert_eq!(a, b);
        assert_eq!(classes.job(a).display, ["Linux", "amd64"]);
        assert_ne!(a, classes.job_class(&strings(&["amd64"])));
    }

    #[test]
    fn classes_know_each_other_whichever_comes_first() {
        let mut classes = Classes::default();
        let early_job = classes.job_class(&strings(&["x64"]));
        let small = classes.host_class(&strings(&["linux", "x64"]));
        let big = classes.host_class(&strings(&["linux", "x64", "intel64"]));
        let late_job = classes.job_class(&strings(&["intel64"]));
        classes.attach(small, 0, true, false);
        classes.attach(big, 1, true, false);
        // Nothing is queued: no job class is a candidate (this also sorts the host orders).
        assert!(classes.candidates().is_empty());
        // The small class serves one job class, the big one two: the small goes first.
        assert_eq!(classes.free_host_for(early_job), Some(0));
        assert_eq!(classes.free_host_for(late_job), Some(1));
        assert_eq!(classes.capacity(early_job), (2, 0, 0, 2));
        classes.detach(small, 0, true, false);
        classes.attach(small, 0, true, true);
        assert_eq!(classes.capacity(early_job), (2, 1, 0, 1));
        assert_eq!(classes.free_host_for(early_job), Some(1));
    }
}
