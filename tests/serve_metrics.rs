//! `GET /metrics` end to end: a real `metalfarm serve` with hosts in its config and
//! some deliveries; every line of the scrape must be valid text exposition format
//! (0.0.4), and the values must be the farm's.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use common::farm::{deliver, example_payload, FarmServer};
use common::lab::lab_toml;
use common::postgres::Postgres;
use common::testhost::TestHosts;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use metalfarm::farm::hosts::Inventory;
use metalfarm::store::{NewJob, NewRun, Store};

/// Two amd64 test hosts, and an arm64 host no job here runs on.
fn config(hosts: &TestHosts) -> String {
    let lab = lab_toml(hosts, &[("amd-1", &["amd64"]), ("amd-2", &["amd64", "hostprovisioning"])]);
    format!(
        r#"
[[repo]]
name = "Codertocat/Hello-World"
workflows = ["workflows/*.yml"]

{lab}
[[host]]
name = "arm-1"
arch = "arm64"
labels = ["kvm", 'rack"b\row']
"#
    )
}

/// Per push: a job an amd64 host takes, one skipped, and three no host can take (no
/// `sparc64` or `riscv64` host), which stay queued; two of these name one label set in
/// two ways.
const PORTS: &str = "\
name: Ports
on: push
jobs:
  unit:
    runs-on: [self-hosted, amd64]
    steps:
      - run: sleep 600
  never:
    if: ${{ false }}
    runs-on: [self-hosted, amd64]
    steps:
      - run: make
  build:
    runs-on: [self-hosted, SPARC64]
    steps:
      - run: make
  docs:
    runs-on: [sparc64, self-hosted]
    steps:
      - run: make docs
  riscv:
    runs-on: [self-hosted, riscv64]
    steps:
      - run: make
";

/// One sample: its labels, sorted, and value.
type Series = BTreeMap<String, String>;

/// A scrape, parsed and checked line by line.
#[derive(Debug, Default)]
struct Scrape {
    /// Family name → its `# TYPE`.
    types: HashMap<String, String>,
    /// Sample name → its series.
    samples: HashMap<String, Vec<(Series, f64)>>,
}

impl Scrape {
    /// The value of the sample `name` with exactly `labels`.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let wanted: Series = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        self.samples.get(name)?.iter().find(|(series, _)| *series == wanted).map(|(_, v)| *v)
    }

    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.value(name, labels)
            .unwrap_or_else(|| panic!("no sample {name}{labels:?} in {:#?}", self.samples))
    }
}

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(name: &str) -> bool {
    is_metric_name(name) && !name.contains(':')
}

/// Parses `{a="x",b="y\"z"}` (after the metric name): the labels, and the rest of the line.
fn parse_labels(text: &str) -> Result<(Series, &str), String> {
    let mut labels = Series::new();
    let Some(mut rest) = text.strip_prefix('{') else { return Ok((labels, text)) };
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            return Ok((labels, after));
        }
        let (name, after) = rest.split_once("=\"").ok_or("a label without =\"")?;
        if !is_label_name(name) {
            return Err(format!("bad label name `{name}`"));
        }
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next().ok_or("an unterminated label value")? {
                (i, '"') => break i,
                (_, '\\') => match chars.next().ok_or("a dangling escape")?.1 {
                    '\\' => value.push('\\'),
                    '"' => value.push('"'),
                    'n' => value.push('\n'),
                    other => return Err(format!("bad escape `\\{other}` in a label value")),
                },
                (_, '\n') => return Err("a raw newline in a label value".into()),
                (_, c) => value.push(c),
            }
        };
        if labels.insert(name.to_owned(), value).is_some() {
            return Err(format!("label `{name}` twice"));
        }
        rest = &after[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}

fn parse_value(text: &str) -> Result<f64, String> {
    match text {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => text.parse().map_err(|_| format!("bad value `{text}`")),
    }
}

/// Checks every line against the text exposition format 0.0.4 and collects the
/// samples. Every sample must belong to a family declared by `# HELP` and `# TYPE`
/// before it (a histogram's through `_bucket`, `_sum`, `_count`).
fn parse(text: &str) -> Scrape {
    let mut scrape = Scrape::default();
    let mut helped = HashMap::new();
    assert!(text.ends_with('\n'), "the last line ends with a newline");
    for (n, line) in text.lines().enumerate() {
        let fail = |why: &str| -> ! { panic!("line {}: {why}: {line:?}", n + 1) };
        if let Some(help) = line.strip_prefix("# HELP ") {
            let (name, doc) = help.split_once(' ').unwrap_or_else(|| fail("HELP without text"));
            if !is_metric_name(name) || helped.insert(name.to_owned(), doc.to_owned()).is_some() {
                fail("a bad or repeated HELP name");
            }
            let mut escapes = doc.split('\\').skip(1);
            if escapes.any(|after| !(after.is_empty() || after.starts_with('n'))) {
                fail("HELP escapes only backslash and newline");
            }
        } else if let Some(kind) = line.strip_prefix("# TYPE ") {
            let (name, kind) = kind.split_once(' ').unwrap_or_else(|| fail("TYPE without a type"));
            if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                fail("unknown type");
            }
            if !is_metric_name(name) || scrape.types.insert(name.to_owned(), kind.to_owned()).is_some() {
                fail("a bad or repeated TYPE name");
            }
            if scrape.samples.keys().any(|s| s.starts_with(name)) {
                fail("TYPE after its samples");
            }
        } else if line.starts_with('#') {
            // A comment.
        } else {
            let name_end = line.find(['{', ' ']).unwrap_or_else(|| fail("a sample without a value"));
            let name = &line[..name_end];
            if !is_metric_name(name) {
                fail("a bad metric name");
            }
            let (labels, rest) = parse_labels(&line[name_end..]).unwrap_or_else(|e| fail(&e));
            let mut fields =
                rest.strip_prefix(' ').unwrap_or_else(|| fail("no space before the value")).split(' ');
            let value = parse_value(fields.next().unwrap_or_default()).unwrap_or_else(|e| fail(&e));
            if let Some(timestamp) = fields.next() {
                timestamp.parse::<i64>().unwrap_or_else(|_| fail("bad timestamp"));
            }
            if fields.next().is_some() {
                fail("text after the timestamp");
            }
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .filter_map(|suffix| name.strip_suffix(suffix))
                .find(|base| scrape.types.get(*base).is_some_and(|t| t == "histogram"))
                .unwrap_or(name);
            if !scrape.types.contains_key(family) || !helped.contains_key(family) {
                fail("a sample of no declared family");
            }
            if family != name && name.ends_with("_bucket") && !labels.contains_key("le") {
                fail("a bucket without `le`");
            }
            scrape.samples.entry(name.to_owned()).or_default().push((labels, value));
        }
    }
    for (name, kind) in &scrape.types {
        assert!(name.starts_with("metalfarm_"), "{name}: the farm's metrics are metalfarm_*");
        assert_eq!(
            kind == "counter",
            name.ends_with("_total"),
            "{name}: counters, and only they, end in _total"
        );
    }
    scrape
}

/// GETs `/metrics`: the content type and the parsed body.
async fn scrape(server: &FarmServer) -> (String, Scrape) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let response = client.get(server.url("/metrics").parse().unwrap()).await.expect("GET /metrics");
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    let body = response.into_body().collect().await.expect("body").to_bytes();
    (content_type, parse(std::str::from_utf8(&body).expect("UTF-8")))
}

#[tokio::test]
async fn metrics_show_hosts_queue_and_deliveries_from_the_store() {
    let hosts = TestHosts::start(2);
    let mut server = FarmServer::start(&config(&hosts));
    server.write("workflows/ports.yml", PORTS);
    let push = example_payload("push", |p| p["ref"] == "refs/heads/master" && p["installation"]["id"] == 1);
    for delivery in ["push-1", "push-1", "push-2"] {
        assert_eq!(deliver(&server, "push", delivery, push.to_string().as_bytes()).await.status, 200);
    }
    server.processed().await;

    // The farm places what it can: each push's `unit` job on an amd64 host.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (content_type, metrics) = loop {
        let (content_type, metrics) = scrape(&server).await;
        let placed = metrics.get("metalfarm_jobs", &[("status", "in_progress")]) == 2.0
            && metrics.value("metalfarm_jobs_completed_total", &[("conclusion", "skipped")]) == Some(2.0);
        if placed {
            break (content_type, metrics);
        }
        assert!(Instant::now() < deadline, "jobs not placed: {metrics:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");

    let hosts = |state| metrics.get("metalfarm_hosts", &[("state", state)]);
    assert_eq!([hosts("ready"), hosts("leased"), hosts("maintenance")], [1.0, 2.0, 0.0]);
    let labelled = |label, state| metrics.get("metalfarm_host_labels", &[("label", label), ("state", state)]);
    assert_eq!(labelled("amd64", "leased"), 2.0);
    assert_eq!(labelled("self-hosted", "ready"), 1.0);
    assert_eq!(labelled("arm64", "ready"), 1.0);
    assert_eq!(labelled("x64", "ready"), 0.0);
    // Label values are escaped, and read back as they were.
    assert_eq!(labelled("rack\"b\\row", "ready"), 1.0);

    // Two pushes (the redelivery is one of them), five jobs each.
    assert_eq!(metrics.get("metalfarm_runs", &[("status", "in_progress")]), 2.0);
    assert_eq!(metrics.get("metalfarm_jobs", &[("status", "queued")]), 6.0);
    let queued = |set| metrics.get("metalfarm_queued_jobs", &[("runs_on", set)]);
    assert_eq!((queued("self-hosted,sparc64"), queued("riscv64,self-hosted")), (4.0, 2.0));
    assert_eq!(metrics.value("metalfarm_queued_jobs", &[("runs_on", "amd64,self-hosted")]), None);
    let oldest =
        metrics.get("metalfarm_queued_job_oldest_wait_seconds", &[("runs_on", "self-hosted,sparc64")]);
    assert!((0.0..600.0).contains(&oldest), "{oldest}");
    // The two that started, each after a wait well under a minute.
    let waits = |sample, le: Option<&str>| {
        let mut labels = vec![("runs_on", "amd64,self-hosted")];
        labels.extend(le.map(|le| ("le", le)));
        metrics.get(sample, &labels)
    };
    assert_eq!(waits("metalfarm_job_wait_seconds_count", None), 2.0);
    assert_eq!(waits("metalfarm_job_wait_seconds_bucket", Some("60")), 2.0);
    assert_eq!(waits("metalfarm_job_wait_seconds_bucket", Some("+Inf")), 2.0);
    assert!((0.0..120.0).contains(&waits("metalfarm_job_wait_seconds_sum", None)));

    assert_eq!(metrics.get("metalfarm_webhook_deliveries_received_total", &[]), 2.0);
    assert_eq!(metrics.get("metalfarm_webhook_deliveries_processed_total", &[]), 2.0);
    assert_eq!(metrics.get("metalfarm_webhook_deliveries_unprocessed", &[]), 0.0);
    assert_eq!(metrics.get("metalfarm_scheduled_events_total", &[]), 0.0);
    assert_eq!(metrics.get("metalfarm_dispatched_events_total", &[]), 0.0);
    // No forge to report to: at least every check run's first state waits in the outbox.
    assert!(metrics.get("metalfarm_outbox_backlog", &[]) >= 10.0);

    // A change in the store shows at the next scrape, whoever made it.
    let store = server.store().await;
    Inventory::new(store.clone()).lock("arm-1", "new disks").await.expect("lock");
    store.close().await;
    let (_, metrics) = scrape(&server).await;
    assert_eq!(metrics.get("metalfarm_hosts", &[("state", "maintenance")]), 1.0);
    assert_eq!(metrics.get("metalfarm_host_labels", &[("label", "kvm"), ("state", "maintenance")]), 1.0);
    assert_eq!(metrics.get("metalfarm_host_labels", &[("label", "arm64"), ("state", "ready")]), 0.0);

    // The store is the truth: a restart loses no count.
    server.kill_and_restart();
    let (_, after) = scrape(&server).await;
    assert_eq!(after.get("metalfarm_webhook_deliveries_received_total", &[]), 2.0);
    assert_eq!(after.get("metalfarm_queued_jobs", &[("runs_on", "self-hosted,sparc64")]), 4.0);
    assert_eq!(after.get("metalfarm_hosts", &[("state", "maintenance")]), 1.0);
    assert_eq!(after.get("metalfarm_jobs_completed_total", &[("conclusion", "skipped")]), 2.0);
}

/// The aggregate SQL on PostgreSQL (sums there are NUMERIC unless cast).
#[tokio::test]
async fn counts_work_the_same_on_postgres() {
    let pg = Postgres::start();
    let store = Store::open(&pg.url()).await.expect("open on PostgreSQL");
    store.insert_delivery("d1", "push", "{}").await.unwrap();
    let mut tx = store.begin().await.unwrap();
    let run = NewRun {
        repo: "lab/qemu",
        workflow: "workflows/ci.yml",
        workflow_name: "CI",
        event: "push",
        delivery_id: Some("d1"),
        head_sha: "abc",
        check_sha: "abc",
        git_ref: "refs/heads/master",
        ..Default::default()
    };
    let run_id = tx.insert_run(&run).await.unwrap().run_id;
    let labels = ["self-hosted".to_owned(), "amd64".to_owned()];
    let mut jobs = Vec::new();
    for key in ["a", "b", "c"] {
        let job = NewJob { job_key: key, name: key, runs_on: &labels, ..Default::default() };
        jobs.push(tx.insert_job(run_id, &job).await.unwrap());
    }
    tx.commit().await.unwrap();
    let mut tx = store.begin().await.unwrap();
    tx.start_job(jobs[1], "amd-1").await.unwrap();
    tx.start_job(jobs[2], "amd-2").await.unwrap();
    assert!(tx.complete_job(jobs[2], "success").await.unwrap());
    tx.commit().await.unwrap();
    // As if they had waited 2 s and 90 s for their hosts.
    let pool = sqlx::AnyPool::connect(&pg.url()).await.unwrap();
    for (job, waited_ms) in [(jobs[1], 2_000), (jobs[2], 90_000)] {
        sqlx::query("UPDATE jobs SET created_at = started_at - $1 WHERE id = $2")
            .bind(waited_ms as i64)
            .bind(job)
            .execute(&pool)
            .await
            .unwrap();
    }

    let counts = store.farm_counts(&[1_000, 60_000, 120_000]).await.unwrap();
    let pair = |k: &str, n| (k.to_owned(), n);
    assert_eq!(counts.unfinished_jobs_by_status, [pair("in_progress", 1), pair("queued", 1)]);
    assert_eq!(counts.completed_jobs_by_conclusion, [pair("success", 1)]);
    assert_eq!(counts.queued_jobs.iter().map(|q| q.count).collect::<Vec<_>>(), [1]);
    assert_eq!(counts.job_waits.len(), 1);
    assert_eq!((counts.job_waits[0].count, counts.job_waits[0].sum_ms), (2, 92_000));
    assert_eq!(counts.job_waits[0].at_most, [0, 1, 2]);
    assert_eq!((counts.deliveries.total, counts.deliveries.unprocessed), (1, 1));
    // The API's dispatches are counted apart (LIKE on PostgreSQL).
    store.insert_delivery("dispatch:lab/qemu@1-0", "workflow_dispatch", "{}").await.unwrap();
    let deliveries = store.farm_counts(&[]).await.unwrap().deliveries;
    assert_eq!((deliveries.total, deliveries.dispatched, deliveries.webhooks()), (2, 1, 1));
    pool.close().await;
    store.close().await;
}
