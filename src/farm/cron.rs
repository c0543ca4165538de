//! `schedule` triggers: at each UTC minute, the workflows of each configured repository
//! whose `cron:` entries fire start runs on the head of the repository's default branch,
//! with `github.ref` that branch, as GitHub runs them. The workflows are the farm's
//! (`[[repo]] workflows`) and, with `repo_workflows`, the repository's own
//! `.github/workflows` at that head.
//!
//! A tick is one (repository, workflow file, cron entry, minute), and it runs once: it
//! is claimed in the store in the transaction that records its runs, so the same minute
//! ticked again, a restart, or a second farm on the same database never runs it twice.
//! A tick stays due until it has run or is an hour old: one missed while the farm was
//! down, or while the forge could not be reached, runs late at the next tick within the
//! hour (each missed tick once); older ones are skipped and logged. A tick from before
//! the farm first saw its schedule was never missed, so a new workflow file does not
//! start with a late run.
//!
//! The clock is the caller's: [`Cron::tick`] takes `now`; the serve task passes the real
//! time each minute, tests pass the times they choose.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use tracing::Instrument;

use super::start::{start_runs, EventOrigin, Started};
use super::workflows::{farm_workflows, WorkflowFile};
use super::Farm;
use crate::config::RepoConfig;
use crate::forge::api::ForgeError;
use crate::forge::repos::{default_branch_head, workflow_files_at, DefaultBranchHead};
use crate::store::{CronKey, StoreError};
use crate::workflow::cron::Schedule;
use crate::workflow::event::Event;
use crate::workflow::load::{load, LoadOptions};

/// A missed tick runs late while it is less than this many minutes old.
pub const LATE_LIMIT_MINUTES: i64 = 60;

/// Counting skipped ticks stops here (a `* * * * *` schedule down for a year).
const SKIPPED_COUNT_CAP: u64 = 100_000;

/// What one tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Ticks that started their runs in this tick, on time or late.
    pub fired: Vec<Fired>,
    /// Per schedule, ticks missed more than an hour ago: they never run.
    pub skipped: Vec<Skipped>,
    /// Repositories with due ticks that wait for the forge, and why: they are tried
    /// again at the next tick.
    pub postponed: Vec<(String, String)>,
}

/// A tick that started its runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fired {
    pub key: CronKey,
    pub tick_at: DateTime<Utc>,
    pub sha: String,
    pub runs: usize,
}

/// The ticks of one schedule that were missed for longer than the late limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub key: CronKey,
    /// How many (at most [`SKIPPED_COUNT_CAP`]).
    pub count: u64,
    pub latest: DateTime<Utc>,
}

/// The cron: what it remembers between ticks to spare the forge (nothing it needs to be
/// correct; the store holds that).
#[derive(Debug, Default)]
pub struct Cron {
    /// Each repository's App installation.
    installations: HashMap<String, i64>,
    /// Each repository's `.github/workflows` at the last default-branch head read.
    repo_files: HashMap<String, (String, Vec<WorkflowFile>)>,
    /// A farm without a forge App was told once that it runs no schedules.
    warned_without_forge: bool,
}

/// One `cron:` entry of a loaded workflow file.
struct Scheduled {
    key: CronKey,
    schedule: Schedule,
    file: WorkflowFile,
}

/// The minutes a tick looks at, as unix seconds.
#[derive(Debug, Clone, Copy)]
struct Window {
    /// `now`, unix milliseconds.
    now_ms: i64,
    /// The minute of `now`.
    current: i64,
    /// The oldest minute that may still run late.
    oldest_due: i64,
    /// The oldest minute that left the window since the previous tick: from here to
    /// `oldest_due`, unfired ticks are skipped. `None` at the first tick ever.
    skipped_from: Option<i64>,
}

impl Cron {
    pub fn new() -> Cron {
        Cron::default()
    }

    /// Starts the runs of every tick due at `now`: this minute's, and missed ones of the
    /// last hour. Forge trouble postpones a repository's ticks to the next call; only
    /// store errors are errors.
    pub async fn tick(&mut self, farm: &Farm, now: DateTime<Utc>) -> Result<TickReport, StoreError> {
        let current = now.timestamp().div_euclid(60) * 60;
        let oldest_due = current - (LATE_LIMIT_MINUTES - 1) * 60;
        let last_tick = farm.store.cron_last_tick().await?.map(|ms| ms.div_euclid(1000));
        let window = Window {
            now_ms: now.timestamp_millis(),
            current,
            oldest_due,
            skipped_from: last_tick.map(|last| last - (LATE_LIMIT_MINUTES - 1) * 60),
        };
        let fired_since = window.skipped_from.unwrap_or(oldest_due).min(oldest_due);
        let mut fired: HashSet<(CronKey, i64)> = farm
            .store
            .cron_ticks_since(fired_since * 1000)
            .await?
            .into_iter()
            .map(|tick| (tick.key, tick.tick_at.div_euclid(1000)))
            .collect();
        let mut first_seen: HashMap<CronKey, i64> = farm
            .store
            .cron_schedules()
            .await?
            .into_iter()
            .map(|(key, ms)| (key, ms.div_euclid(1000)))
            .collect();
        let mut report = TickReport::default();
        for repo in &farm.config.repos {
            let span = tracing::info_span!("cron", repo = %repo.name);
            self.tick_repo(farm, repo, window, &mut fired, &mut first_seen, &mut report)
                .instrument(span)
                .await?;
        }
        farm.store.set_cron_last_tick(current * 1000).await?;
        if !report.fired.is_empty() {
            farm.outbox_waiting.notify_one();
            farm.dispatcher.wake();
        }
        Ok(report)
    }

    async fn tick_repo(
        &mut self,
        farm: &Farm,
        repo: &RepoConfig,
        window: Window,
        fired: &mut HashSet<(CronKey, i64)>,
        first_seen: &mut HashMap<CronKey, i64>,
        report: &mut TickReport,
    ) -> Result<(), StoreError> {
        let mut scheduled = schedules_of(&repo.name, &farm_workflows(&farm.config, &repo.name));
        // The forge is asked only when something may be due: the farm's schedules are
        // known without it, the repository's own are not.
        let wanted = repo.repo_workflows
            || scheduled.iter().any(|s| {
                let seen = first_seen.get(&s.key).copied().unwrap_or(window.current);
                unfired(s, window.oldest_due.max(seen), window.current, fired).next().is_some()
            });
        let mut head = None;
        if wanted {
            match self.default_branch_head(farm, &repo.name).await {
                Ok(found) => head = Some(found),
                Err(err) => {
                    // Without an App this never changes: said once, not every minute.
                    let said =
                        farm.forge.is_none() && std::mem::replace(&mut self.warned_without_forge, true);
                    if !said {
                        tracing::warn!(%err, "scheduled runs wait for the forge; trying again next minute");
                    }
                    report.postponed.push((repo.name.clone(), err.to_string()));
                }
            }
        }
        if let (Some((_, head)), true) = (&head, repo.repo_workflows) {
            match self.repo_files(farm, &repo.name, head).await {
                Ok(files) => scheduled.extend(schedules_of(&repo.name, &files)),
                Err(err) => {
                    tracing::warn!(%err, "cannot read the repository's workflows; trying again next minute");
                    report.postponed.push((repo.name.clone(), err.to_string()));
                }
            }
        }

        for s in &scheduled {
            let seen = match first_seen.get(&s.key) {
                Some(seen) => *seen,
                None => {
                    farm.store.add_cron_schedule(&s.key, window.current * 1000).await?;
                    first_seen.insert(s.key.clone(), window.current);
                    window.current
                }
            };
            if let Some(from) = window.skipped_from {
                if let Some(skipped) = skipped_ticks(s, from.max(seen), window.oldest_due, fired) {
                    tracing::warn!(
                        workflow = %s.key.workflow, cron = %s.key.cron, count = skipped.count,
                        latest = %skipped.latest,
                        "skipped scheduled ticks missed more than an hour ago"
                    );
                    report.skipped.push(skipped);
                }
            }
            let Some((installation_id, head)) = &head else { continue };
            let due: Vec<i64> = unfired(s, window.oldest_due.max(seen), window.current, fired).collect();
            for minute in due {
                let span = tracing::info_span!(
                    "tick", workflow = %s.key.workflow, cron = %s.key.cron, minute = %utc(minute)
                );
                let started = fire(farm, s, minute, window.now_ms, *installation_id, head)
                    .instrument(span.clone())
                    .await?;
                fired.insert((s.key.clone(), minute));
                let Some(started) = started else { continue };
                let tick_at = utc(minute);
                let late = window.current - minute;
                span.in_scope(|| {
                    tracing::info!(late_seconds = late, sha = %head.sha, "scheduled tick: {}", started.describe())
                });
                report.fired.push(Fired {
                    key: s.key.clone(),
                    tick_at,
                    sha: head.sha.clone(),
                    runs: started.runs,
                });
            }
        }
        Ok(())
    }

    /// The installation of the App on `repo` and its default branch's head.
    async fn default_branch_head(
        &mut self,
        farm: &Farm,
        repo: &str,
    ) -> Result<(i64, DefaultBranchHead), ForgeError> {
        let app = farm.forge.as_ref().ok_or_else(|| {
            ForgeError::Config("no forge.app_id: scheduled runs need the default branch's head".into())
        })?;
        let installation = match self.installations.get(repo) {
            Some(id) => *id,
            None => app.installation_for_repo(repo).await?,
        };
        let head = async { default_branch_head(&app.installation(installation).await?, repo).await }.await;
        match head {
            Ok(head) => {
                self.installations.insert(repo.to_owned(), installation);
                Ok((installation, head))
            }
            Err(err) => {
                // The App may have been reinstalled under a new id: ask again next time.
                self.installations.remove(repo);
                Err(err)
            }
        }
    }

    /// The repository's `.github/workflows` at `head`, read once per commit.
    async fn repo_files(
        &mut self,
        farm: &Farm,
        repo: &str,
        head: &DefaultBranchHead,
    ) -> Result<Vec<WorkflowFile>, ForgeError> {
        if let Some((sha, files)) = self.repo_files.get(repo) {
            if *sha == head.sha {
                return Ok(files.clone());
            }
        }
        let (Some(app), Some(installation)) = (&farm.forge, self.installations.get(repo)) else {
            return Err(ForgeError::Config("no forge installation for the repository".into()));
        };
        let files: Vec<WorkflowFile> =
            workflow_files_at(&app.installation(*installation).await?, repo, &head.sha)
                .await?
                .into_iter()
                .map(|(path, text)| WorkflowFile { path, text })
                .collect();
        self.repo_files.insert(repo.to_owned(), (head.sha.clone(), files.clone()));
        Ok(files)
    }
}

/// Runs the cron until the task is dropped: a tick at the start of every minute.
pub async fn run_forever(farm: Arc<Farm>) {
    let mut cron = Cron::new();
    loop {
        if let Err(err) = cron.tick(&farm, Utc::now()).await {
            tracing::error!(%err, "the cron tick failed; its ticks stay due for the next minute");
        }
        // A little into the next minute, so the clock surely reads that minute.
        let into_minute = Utc::now().timestamp_millis().rem_euclid(60_000) as u64;
        tokio::time::sleep(Duration::from_millis(60_000 - into_minute + 100)).await;
    }
}

/// Records a tick and the runs it starts, in one transaction; `None` when the tick was
/// claimed already.
async fn fire(
    farm: &Farm,
    scheduled: &Scheduled,
    minute: i64,
    now_ms: i64,
    installation_id: i64,
    head: &DefaultBranchHead,
) -> Result<Option<Started>, StoreError> {
    let key = &scheduled.key;
    let delivery_id = format!(
        "schedule:{}:{}:{}@{}",
        key.repo,
        key.workflow,
        key.cron,
        utc(minute).format("%Y-%m-%dT%H:%MZ")
    );
    let payload = json!({ "schedule": key.cron, "repository": head.repository });
    let mut tx = farm.store.begin().await?;
    if !tx.claim_cron_tick(key, minute * 1000, &delivery_id, &payload, now_ms).await? {
        return Ok(None);
    }
    let origin = EventOrigin {
        repo: &key.repo,
        installation_id: Some(installation_id),
        delivery_id: Some(&delivery_id),
        check_sha: &head.sha,
        attempt_of: None,
        priority: 0,
    };
    let event = Event::new("schedule", payload);
    let started = start_runs(&mut tx, &event, &origin, std::slice::from_ref(&scheduled.file)).await?;
    tx.mark_delivery_processed(&delivery_id, &started.describe()).await?;
    tx.commit().await?;
    Ok(Some(started))
}

/// The `cron:` entries of the files that load without errors (a broken workflow runs on
/// no schedule, as on GitHub), each once per file.
fn schedules_of(repo: &str, files: &[WorkflowFile]) -> Vec<Scheduled> {
    let mut found = Vec::new();
    for file in files {
        let loaded = load(&file.text, &LoadOptions { syntax_only: false });
        let Some(workflow) = loaded.workflow.filter(|_| loaded.diagnostics.is_empty()) else {
            continue;
        };
        let Some(schedule_event) = workflow.on.events.get("schedule") else {
            continue;
        };
        let mut crons: Vec<&str> = schedule_event.schedule.iter().map(|e| e.cron.value.as_str()).collect();
        crons.sort_unstable();
        crons.dedup();
        for cron in crons {
            // The loader has refused a cron that does not parse.
            let Ok(schedule) = Schedule::parse(cron) else { continue };
            found.push(Scheduled {
                key: CronKey { repo: repo.to_owned(), workflow: file.path.clone(), cron: cron.to_owned() },
                schedule,
                file: file.clone(),
            });
        }
    }
    found
}

/// The minutes from `from` to `to` (inclusive, unix seconds of minutes) at which
/// `schedule` fires, in UTC.
fn due_minutes(schedule: &Schedule, from: i64, to: i64) -> impl Iterator<Item = i64> + '_ {
    std::iter::successors(schedule.next_after(from - 60), move |minute| schedule.next_after(*minute))
        .take_while(move |minute| *minute <= to)
}

/// The minutes from `from` to `to` (inclusive) at which `scheduled` fires and has not
/// fired.
fn unfired<'a>(
    scheduled: &'a Scheduled,
    from: i64,
    to: i64,
    fired: &'a HashSet<(CronKey, i64)>,
) -> impl Iterator<Item = i64> + 'a {
    due_minutes(&scheduled.schedule, from, to)
        .filter(|minute| !fired.contains(&(scheduled.key.clone(), *minute)))
}

/// The unfired ticks of `scheduled` from `from` up to, not including, `until`.
fn skipped_ticks(
    scheduled: &Scheduled,
    from: i64,
    until: i64,
    fired: &HashSet<(CronKey, i64)>,
) -> Option<Skipped> {
    if from >= until {
        return None;
    }
    let mut count = 0;
    let mut latest = None;
    for minute in unfired(scheduled, from, until - 60, fired) {
        count += 1;
        latest = Some(minute);
        if count == SKIPPED_COUNT_CAP {
            // The newest of a long gap: jump to the last one before `until`.
            latest = last_before(&scheduled.schedule, minute, until).or(latest);
            break;
        }
    }
    latest.map(|latest| Skipped { key: scheduled.key.clone(), count, latest: utc(latest) })
}

/// The last minute before `until` at which `schedule` fires, searching back from `until`
/// in growing steps, but not before `floor`.
fn last_before(schedule: &Schedule, floor: i64, until: i64) -> Option<i64> {
    let mut span = 3600;
    loop {
        let from = (until - span).max(floor);
        if let Some(last) = due_minutes(schedule, from, until - 60).last() {
            return Some(last);
        }
        if from == floor {
            return None;
        }
        span *= 2;
    }
}

fn utc(unix_seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(unix_seconds, 0).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scheduled(cron: &str) -> Scheduled {
        Scheduled {
            key: CronKey { repo: "lab/qemu".into(), workflow: "w.yml".into(), cron: cron.into() },
            schedule: Schedule::parse(cron).unwrap(),
            file: WorkflowFile { path: "w.yml".into(), text: String::new() },
        }
    }

    #[test]
    fn due_minutes_are_inclusive_at_both_ends() {
        let s = Schedule::parse("*/15 * * * *").unwrap();
        // 1970-01-01T00:00 .. 00:45
        assert_eq!(due_minutes(&s, 0, 2700).collect::<Vec<_>>(), vec![0, 900, 1800, 2700]);
        assert_eq!(due_minutes(&s, 60, 2640).collect::<Vec<_>>(), vec![900, 1800]);
        assert_eq!(due_minutes(&s, 960, 1740).count(), 0);
    }

    #[test]
    fn skipped_ticks_leave_out_fired_ones_and_count_long_gaps() {
        let s = scheduled("*/15 * * * *");
        let fired: HashSet<_> = [(s.key.clone(), 900)].into_iter().collect();
        let skipped = skipped_ticks(&s, 0, 2700, &fired).unwrap();
        assert_eq!((skipped.count, skipped.latest.timestamp()), (2, 1800));
        assert_eq!(skipped_ticks(&s, 2700, 2700, &fired), None);

        // Every minute for a year: the count stops at the cap, the latest is still right.
        let every = scheduled("* * * * *");
        let year = 365 * 86_400;
        let skipped = skipped_ticks(&every, 0, year, &HashSet::new()).unwrap();
        assert_eq!((skipped.count, skipped.latest.timestamp()), (SKIPPED_COUNT_CAP, year - 60));
    }
}
