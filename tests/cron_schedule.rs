//! `schedule` triggers with the cron's clock in the test's hands: a farm in process (a
//! store on a tempdir, the test forge as the GitHub App's forge) ticked at chosen
//! minutes. Runs start at the right minutes on the default branch's head, each tick
//! once — across restarts (a new farm on the same database), late within the hour after
//! downtime or a forge outage, and skipped when older.

mod common;

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Timelike, Utc};
use common::farm::app_key_pair;
use common::forge::{Failure, TestForge};
use metalfarm::config::Config;
use metalfarm::farm::cron::{Cron, TickReport};
use metalfarm::farm::Farm;
use metalfarm::forge::app::GithubApp;
use metalfarm::store::{CronKey, Store};

const REPO: &str = "lab/qemu";
const SHA1: &str = "1111111111111111111111111111111111111111";
const SHA2: &str = "2222222222222222222222222222222222222222";

const SANITY: &str = "\
name: Sanity
on:
  schedule:
    - cron: '*/15 * * * *'
jobs:
  sanity:
    runs-on: [self-hosted, amd64]
    steps:
      - run: make check
";

const STABLE: &str = "\
name: Stable
on:
  push:
  schedule:
    - cron: '30 6 * * 1'
jobs:
  stable:
    runs-on: [self-hosted, intel64, hostprovisioning]
    steps:
      - run: make stable
";

/// The farm's folder, its database and the forge, which outlive any one farm process.
struct Lab {
    dir: tempfile::TempDir,
    forge: TestForge,
    app_key: Vec<u8>,
    database: String,
}

impl Lab {
    /// `lab/qemu` (default branch `master` at [`SHA1`]) with the farm's workflows
    /// `sanity.yml` (every 15 minutes) and `stable.yml` (Mondays 06:30).
    async fn start(database: Option<String>) -> Lab {
        let (private, public) = app_key_pair();
        let forge = TestForge::start(public).await;
        forge.set_default_branch(REPO, "master");
        forge.set_ref(REPO, "master", SHA1);
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("workflows")).expect("mkdir");
        std::fs::write(dir.path().join("workflows/sanity.yml"), SANITY).expect("write");
        std::fs::write(dir.path().join("workflows/stable.yml"), STABLE).expect("write");
        let database =
            database.unwrap_or_else(|| format!("sqlite://{}", dir.path().join("farm.db").display()));
        Lab { dir, forge, app_key: private, database }
    }

    /// A farm process on the lab's database with `repos_toml`; a second one is a restart.
    async fn farm_with(&self, repos_toml: &str) -> Farm {
        let text = format!(
            "[server]\ndatabase = \"{}\"\n\n[forge]\napi_url = \"{}\"\n\n{repos_toml}",
            self.database,
            self.forge.api_url()
        );
        let config = Config::from_toml(&text, "farm.toml", self.dir.path()).expect("config");
        let store = Store::open(&self.database).await.expect("open the store");
        let app = GithubApp::new(&self.forge.api_url(), 4242, &self.app_key).expect("the App");
        Farm::new(config, store, Some(Arc::new(app)))
    }

    async fn farm(&self) -> Farm {
        self.farm_with(&format!("[[repo]]\nname = \"{REPO}\"\nworkflows = [\"workflows/*.yml\"]\n")).await
    }
}

/// 2026-11-23, a Monday, at `hour:minute`, some seconds into the minute.
fn monday(hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, hour, minute, 17).unwrap()
}

/// Every minute from `from` to `to` (inclusive) on the Monday.
fn minutes(from: (u32, u32), to: (u32, u32)) -> Vec<DateTime<Utc>> {
    let (start, end) = (monday(from.0, from.1), monday(to.0, to.1));
    std::iter::successors(Some(start), |t| Some(*t + chrono::Duration::minutes(1)))
        .take_while(|t| *t <= end)
        .collect()
}

/// What a report fired: (workflow, tick `HH:MM`, sha), one run each.
fn fired(report: &TickReport) -> Vec<(String, String, String)> {
    for fired in &report.fired {
        assert_eq!(fired.runs, 1, "{fired:?}");
    }
    report
        .fired
        .iter()
        .map(|f| (f.key.workflow.clone(), f.tick_at.format("%H:%M").to_string(), f.sha.clone()))
        .collect()
}

fn tick(workflow: &str, at: &str, sha: &str) -> (String, String, String) {
    (format!("workflows/{workflow}.yml"), at.to_owned(), sha.to_owned())
}

async fn tick_each(cron: &mut Cron, farm: &Farm, times: &[DateTime<Utc>]) -> Vec<(String, String, String)> {
    let mut all = Vec::new();
    for now in times {
        let report = cron.tick(farm, *now).await.expect("tick");
        assert!(report.postponed.is_empty() && report.skipped.is_empty(), "{now}: {report:?}");
        all.extend(fired(&report));
    }
    all
}

#[tokio::test]
async fn ticks_start_runs_at_their_minutes_once_across_a_restart() {
    let lab = Lab::start(None).await;
    let farm = lab.farm().await;
    let mut cron = Cron::new();
    let mut seen = Vec::new();
    for now in minutes((5, 58), (6, 47)) {
        if (now.hour(), now.minute()) == (6, 20) {
            lab.forge.set_ref(REPO, "master", SHA2);
        }
        let report = cron.tick(&farm, now).await.expect("tick");
        assert!(report.postponed.is_empty() && report.skipped.is_empty(), "{now}: {report:?}");
        for fired in &report.fired {
            assert_eq!(fired.tick_at.timestamp(), now.timestamp() / 60 * 60, "on time: {fired:?}");
        }
        seen.extend(fired(&report));
    }
    assert_eq!(
        seen,
        [
            tick("sanity", "06:00", SHA1),
            tick("sanity", "06:15", SHA1),
            tick("sanity", "06:30", SHA2),
            tick("stable", "06:30", SHA2),
            tick("sanity", "06:45", SHA2),
        ]
    );

    // The runs as recorded: event `schedule` on the default branch's head, its ref.
    let runs = farm.store.runs().await.unwrap();
    assert_eq!(runs.len(), 5);
    assert!(runs.iter().all(|r| r.event == "schedule" && r.repo == REPO), "{runs:?}");
    let recorded = farm.store.cron_ticks_since(0).await.unwrap();
    assert_eq!(recorded.len(), 5);
    for (tick, run) in recorded.iter().zip(&runs) {
        assert_eq!(tick.run_id, Some(run.id));
        assert_eq!(tick.git_ref.as_deref(), Some("refs/heads/master"));
        assert_eq!(tick.head_sha.as_deref(), Some(run.head_sha.as_str()));
        assert_eq!(run.delivery_id.as_deref(), Some(tick.delivery_id.as_str()));
        assert_eq!(run.installation_id, Some(1));
    }
    let event = farm.store.delivery(&recorded[3].delivery_id).await.unwrap().expect("the event is kept");
    let payload: serde_json::Value = serde_json::from_str(&event.body).unwrap();
    assert_eq!((event.event.as_str(), payload["schedule"].as_str()), ("schedule", Some("30 6 * * 1")));
    assert_eq!(payload["repository"]["full_name"], REPO);
    assert_eq!(payload["repository"]["default_branch"], "master");
    // A re-run of a scheduled run is the next attempt, from the same event, on the same commit.
    let mut tx = farm.store.begin().await.unwrap();
    let outcome = metalfarm::farm::rerun::rerun(&farm, &mut tx, &runs[3]).await.unwrap();
    tx.commit().await.unwrap();
    let again = farm.store.runs().await.unwrap().pop().unwrap();
    assert_eq!(
        (again.run_number, again.run_attempt, again.event.as_str(), again.head_sha.as_str()),
        (runs[3].run_number, 2, "schedule", SHA2),
        "{outcome}"
    );

    // The same minutes again: nothing more.
    assert_eq!(tick_each(&mut cron, &farm, &[monday(6, 45), monday(6, 30)]).await, []);

    // A restart: a new farm and cron on the same database.
    farm.store.close().await;
    let farm = lab.farm().await;
    let mut cron = Cron::new();
    assert_eq!(tick_each(&mut cron, &farm, &minutes((6, 45), (6, 59))).await, []);
    assert_eq!(tick_each(&mut cron, &farm, &[monday(7, 0)]).await, [tick("sanity", "07:00", SHA2)]);
    assert_eq!(farm.store.runs().await.unwrap().len(), 7, "five, a re-run, and 07:00");
    assert_eq!(lab.forge.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn a_tick_missed_while_down_runs_once_late_within_the_hour() {
    let lab = Lab::start(None).await;
    let farm = lab.farm().await;
    let mut cron = Cron::new();
    let before = tick_each(&mut cron, &farm, &minutes((6, 0), (6, 20))).await;
    assert_eq!(before, [tick("sanity", "06:00", SHA1), tick("sanity", "06:15", SHA1)]);
    farm.store.close().await;

    // Down from 06:20 to 06:40: the 06:30 ticks run at 06:40, once.
    let farm = lab.farm().await;
    let mut cron = Cron::new();
    let back = cron.tick(&farm, monday(6, 40)).await.unwrap();
    assert_eq!(fired(&back), [tick("sanity", "06:30", SHA1), tick("stable", "06:30", SHA1)]);
    assert_eq!(back.skipped, []);
    let late = farm.store.cron_ticks_since(monday(6, 30).timestamp() * 1000).await.unwrap();
    assert!(late.iter().all(|t| t.fired_at == monday(6, 40).timestamp_millis()), "{late:?}");
    assert_eq!(tick_each(&mut cron, &farm, &minutes((6, 40), (6, 44))).await, []);
    assert_eq!(tick_each(&mut cron, &farm, &[monday(6, 45)]).await, [tick("sanity", "06:45", SHA1)]);
    assert_eq!(farm.store.runs().await.unwrap().len(), 5);
}

#[tokio::test]
async fn ticks_missed_more_than_an_hour_ago_are_skipped() {
    let lab = Lab::start(None).await;
    let farm = lab.farm().await;
    let mut cron = Cron::new();
    assert_eq!(tick_each(&mut cron, &farm, &minutes((6, 0), (6, 10))).await, [tick("sanity", "06:00", SHA1)]);
    farm.store.close().await;

    // Down from 06:10 to 07:50: what is less than an hour old runs late, the rest is skipped.
    let farm = lab.farm().await;
    let mut cron = Cron::new();
    let back = cron.tick(&farm, monday(7, 50)).await.unwrap();
    assert_eq!(
        fired(&back),
        [
            tick("sanity", "07:00", SHA1),
            tick("sanity", "07:15", SHA1),
            tick("sanity", "07:30", SHA1),
            tick("sanity", "07:45", SHA1),
        ]
    );
    let skipped: Vec<(String, u64, String)> = back
        .skipped
        .iter()
        .map(|s| (s.key.workflow.clone(), s.count, s.latest.format("%H:%M").to_string()))
        .collect();
    assert_eq!(
        skipped,
        [
            ("workflows/sanity.yml".into(), 3, "06:45".into()),
            ("workflows/stable.yml".into(), 1, "06:30".into())
        ]
    );
    let next = cron.tick(&farm, monday(7, 51)).await.unwrap();
    assert_eq!((next.fired.len(), next.skipped.len()), (0, 0));
    assert_eq!(farm.store.runs().await.unwrap().len(), 5);
}

#[tokio::test]
async fn a_forge_outage_postpones_ticks_without_losing_or_doubling_them() {
    let lab = Lab::start(None).await;
    let farm = lab.farm().await;
    let mut cron = Cron::new();
    let bad_gateway =
        || Failure { status: 502, headers: vec![], body: serde_json::json!({"message": "Bad Gateway"}) };
    assert_eq!(tick_each(&mut cron, &farm, &[monday(6, 14)]).await, []);

    lab.forge.fail_next([bad_gateway()]);
    let report = cron.tick(&farm, monday(6, 15)).await.unwrap();
    assert_eq!((report.fired.len(), report.postponed.len()), (0, 1), "{report:?}");
    assert_eq!(report.postponed[0].0, REPO);
    assert_eq!(tick_each(&mut cron, &farm, &[monday(6, 16)]).await, [tick("sanity", "06:15", SHA1)]);
    assert_eq!(tick_each(&mut cron, &farm, &[monday(6, 16), monday(6, 17)]).await, []);

    // An outage longer than the hour: each tick asks the forge once, and fails, from 06:30
    // to 07:29. At 07:30 the 06:30 ticks are an hour old: skipped; later ones run late.
    lab.forge.fail_next((0..60).map(|_| bad_gateway()));
    for now in minutes((6, 30), (7, 29)) {
        let report = cron.tick(&farm, now).await.unwrap();
        assert_eq!((report.fired.len(), report.postponed.len(), report.skipped.len()), (0, 1, 0), "{now}");
    }
    let back = cron.tick(&farm, monday(7, 30)).await.unwrap();
    assert_eq!(
        fired(&back),
        [
            tick("sanity", "06:45", SHA1),
            tick("sanity", "07:00", SHA1),
            tick("sanity", "07:15", SHA1),
            tick("sanity", "07:30", SHA1),
        ]
    );
    let skipped: Vec<(String, u64)> = back.skipped.iter().map(|s| (s.key.cron.clone(), s.count)).collect();
    assert_eq!(skipped, [("*/15 * * * *".into(), 1), ("30 6 * * 1".into(), 1)]);
    assert_eq!(farm.store.runs().await.unwrap().len(), 5);
    assert_eq!(lab.forge.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn the_repositorys_own_workflows_run_on_schedule_from_the_default_branch() {
    let lab = Lab::start(None).await;
    let repo = "lab/kvm";
    lab.forge.set_default_branch(repo, "next");
    lab.forge.set_ref(repo, "next", SHA1);
    let nightly = |cron: &str| {
        format!("name: Nightly\non:\n  schedule:\n    - cron: '{cron}'\njobs:\n  n:\n    runs-on: amd64\n    steps:\n      - run: make\n")
    };
    lab.forge.add_file(repo, SHA1, ".github/workflows/nightly.yml", &nightly("0 2 * * *"));
    lab.forge.add_file(repo, SHA2, ".github/workflows/nightly.yml", &nightly("5 2 * * *"));
    let farm =
        lab.farm_with(&format!("[[repo]]\nname = \"{repo}\"\nworkflows = []\nrepo_workflows = true\n")).await;
    let mut cron = Cron::new();

    let mut seen = Vec::new();
    for (hour, minute) in [(1, 59), (2, 0), (2, 1), (2, 2), (2, 3), (2, 4), (2, 5)] {
        if (hour, minute) == (2, 3) {
            lab.forge.set_ref(repo, "next", SHA2);
        }
        let report = cron.tick(&farm, monday(hour, minute)).await.unwrap();
        assert!(report.postponed.is_empty(), "{report:?}");
        seen.extend(
            report
                .fired
                .iter()
                .map(|f| (f.key.clone(), f.tick_at.format("%H:%M").to_string(), f.sha.clone())),
        );
    }
    let key = |cron: &str| CronKey {
        repo: repo.into(),
        workflow: ".github/workflows/nightly.yml".into(),
        cron: cron.into(),
    };
    assert_eq!(
        seen,
        [(key("0 2 * * *"), "02:00".into(), SHA1.into()), (key("5 2 * * *"), "02:05".into(), SHA2.into())]
    );
    let recorded = farm.store.cron_ticks_since(0).await.unwrap();
    assert!(recorded.iter().all(|t| t.git_ref.as_deref() == Some("refs/heads/next")), "{recorded:?}");
    // The folder is read once per commit, not every minute.
    let listings =
        lab.forge.requests().iter().filter(|r| r.path.ends_with("/contents/.github/workflows")).count();
    assert_eq!(listings, 2);
    assert_eq!(lab.forge.violations(), Vec::<String>::new());
}

/// PostgreSQL is how farms scale out: two farms on one database, ticking the same
/// minutes at the same time, run each tick once between them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticks_run_once_across_restarts_and_farms_on_postgres() {
    let pg = common::postgres::Postgres::start();
    let lab = Lab::start(Some(pg.url())).await;
    let farm = lab.farm().await;
    let mut cron = Cron::new();
    assert_eq!(tick_each(&mut cron, &farm, &minutes((6, 0), (6, 1))).await, [tick("sanity", "06:00", SHA1)]);
    farm.store.close().await;

    let farm = lab.farm().await;
    let mut cron = Cron::new();
    assert_eq!(tick_each(&mut cron, &farm, &[monday(6, 0), monday(6, 14)]).await, []);
    let back = cron.tick(&farm, monday(6, 40)).await.unwrap();
    assert_eq!(
        fired(&back),
        [tick("sanity", "06:15", SHA1), tick("sanity", "06:30", SHA1), tick("stable", "06:30", SHA1)]
    );

    let other = lab.farm().await;
    let mut other_cron = Cron::new();
    for now in minutes((6, 44), (6, 46)) {
        let (a, b) = tokio::join!(cron.tick(&farm, now), other_cron.tick(&other, now));
        let (a, b) = (a.unwrap(), b.unwrap());
        let both: Vec<_> = fired(&a).into_iter().chain(fired(&b)).collect();
        let want = if now.minute() == 45 { vec![tick("sanity", "06:45", SHA1)] } else { vec![] };
        assert_eq!(both, want, "{now}");
    }
    assert_eq!(farm.store.runs().await.unwrap().len(), 5);
    farm.store.close().await;
    other.store.close().await;
}

/// `metalfarm serve` runs the cron on the real clock: it ticks at start, so an
/// every-minute schedule shows up on the forge at once, as a check run on the default
/// branch's head.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_schedules_on_the_real_clock() {
    let (private, public) = app_key_pair();
    let forge = TestForge::start(public).await;
    forge.set_default_branch(REPO, "master");
    forge.set_ref(REPO, "master", SHA1);
    // The workflow is in place before the first tick, at start.
    let workflows = tempfile::tempdir().unwrap();
    let minutely = SANITY.replace("*/15 * * * *", "* * * * *");
    std::fs::write(workflows.path().join("minutely.yml"), minutely).unwrap();
    let repos =
        format!("[[repo]]\nname = \"{REPO}\"\nworkflows = [\"{}/*.yml\"]\n", workflows.path().display());
    let server = common::farm::FarmServer::start_reporting(&forge.api_url(), &private, &repos);
    forge.wait_for("a scheduled check run", |runs| !runs.is_empty()).await;

    let run = &forge.check_runs()[0];
    assert_eq!((run.name.as_str(), run.head_sha.as_str()), ("Sanity / sanity", SHA1));
    let store = server.store().await;
    let runs = store.runs().await.unwrap();
    assert!(!runs.is_empty() && runs.iter().all(|r| r.event == "schedule"), "{runs:?}");
    store.close().await;
    assert_eq!(forge.violations(), Vec::<String>::new());
}
