//! `GET /metrics`: the farm in the Prometheus text format (0.0.4), computed from the
//! store at each scrape (the store is the truth: a restart loses no count). Families:
//!
//! - `metalfarm_hosts{state}`, `metalfarm_host_labels{label,state}`: the inventory;
//! - `metalfarm_jobs{status}`: jobs not completed; `metalfarm_jobs_completed_total{conclusion}`;
//! - `metalfarm_queued_jobs{runs_on}`, `metalfarm_queued_job_oldest_wait_seconds{runs_on}`:
//!   the queue by `runs-on` label set; `metalfarm_job_wait_seconds{runs_on}`: a
//!   histogram of how long the jobs that started waited for a host;
//! - `metalfarm_runs{status}`;
//! - `metalfarm_webhook_deliveries_{received,processed}_total`,
//!   `metalfarm_webhook_deliveries_unprocessed`; `metalfarm_scheduled_events_total`,
//!   `metalfarm_dispatched_events_total`: the farm's own events (the cron's, the API's
//!   dispatches), stored as deliveries too but not the forge's;
//! - `metalfarm_outbox_backlog`: check-run states the forge has not received yet.
//!
//! A `runs_on` value is the label set as GitHub matches it: lowercase, sorted, joined
//! with commas (`amd64,self-hosted`).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeGaugeValue, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::{error_response, AppState};
use crate::farm::hosts::{HostState, InventoryError, LabelCount};
use crate::store::{now_ms, FarmCounts, JobStatus};

/// Upper bounds (seconds) of the job-wait histogram's buckets: from a free host at once
/// to a day behind a queue of reinstalls.
const WAIT_BUCKETS_SECONDS: [i64; 14] =
    [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 28800, 86400];

pub(super) async fn scrape(State(state): State<AppState>) -> Response {
    match render(&state).await {
        Ok(text) => {
            ([(header::CONTENT_TYPE, prometheus_client::encoding::prometheus_text::CONTENT_TYPE)], text)
                .into_response()
        }
        Err(error) => {
            tracing::warn!(%error, "metrics not computed");
            error_response(StatusCode::SERVICE_UNAVAILABLE, format!("cannot compute the metrics: {error}"))
        }
    }
}

async fn render(state: &AppState) -> Result<String, InventoryError> {
    let bounds_ms: Vec<i64> = WAIT_BUCKETS_SECONDS.iter().map(|s| s * 1000).collect();
    let counts = state.store.farm_counts(&bounds_ms).await?;
    let labels = state.inventory.label_counts().await?;
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Scrape { counts, labels, now_ms: now_ms() }));
    let mut text = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut text, &registry)
        .expect("writing to a String cannot fail");
    Ok(text)
}

/// What one scrape read, written out as metric families.
#[derive(Debug)]
struct Scrape {
    counts: FarmCounts,
    labels: Vec<LabelCount>,
    now_ms: i64,
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let counts = &self.counts;

        let by_state: BTreeMap<&str, i64> =
            counts.hosts_by_state.iter().map(|(s, n)| (s.as_str(), *n)).collect();
        let hosts =
            HostState::ALL.map(|s| ([("state", s.as_str())], by_state.get(s.as_str()).copied().unwrap_or(0)));
        gauges(&mut encoder, "metalfarm_hosts", "Hosts in the inventory, by state.", hosts)?;

        let host_labels = self.labels.iter().flat_map(|count| {
            count
                .by_state
                .iter()
                .map(|(state, n)| ([("label", count.label.as_str()), ("state", state.as_str())], *n as i64))
        });
        gauges(
            &mut encoder,
            "metalfarm_host_labels",
            "Hosts carrying a label (implicit ones included), by state.",
            host_labels,
        )?;

        let by_status: BTreeMap<&str, i64> =
            counts.unfinished_jobs_by_status.iter().map(|(s, n)| (s.as_str(), *n)).collect();
        let jobs = [JobStatus::Waiting, JobStatus::Queued, JobStatus::InProgress]
            .map(|s| ([("status", s.as_str())], by_status.get(s.as_str()).copied().unwrap_or(0)));
        gauges(
            &mut encoder,
            "metalfarm_jobs",
            "Jobs not completed, by status (waiting: their run awaits approval).",
            jobs,
        )?;

        let completed =
            counts.completed_jobs_by_conclusion.iter().map(|(c, n)| ([("conclusion", c.as_str())], *n));
        counters(&mut encoder, "metalfarm_jobs_completed", "Jobs completed, by conclusion.", completed)?;

        // Label sets written differently ("AMD64" and "amd64", another order) are one set.
        let mut queued: BTreeMap<String, (i64, i64)> = BTreeMap::new();
        for q in &counts.queued_jobs {
            let entry = queued.entry(label_set(&q.runs_on)).or_insert((0, i64::MAX));
            entry.0 += q.count;
            entry.1 = entry.1.min(q.oldest_created_at);
        }
        let lengths = queued.iter().map(|(set, (n, _))| ([("runs_on", set.as_str())], *n));
        gauges(
            &mut encoder,
            "metalfarm_queued_jobs",
            "Jobs queued for a host, by runs-on label set.",
            lengths,
        )?;
        let oldest = queued.iter().map(|(set, (_, oldest))| {
            ([("runs_on", set.as_str())], (self.now_ms - oldest).max(0) as f64 / 1000.0)
        });
        gauges(
            &mut encoder,
            "metalfarm_queued_job_oldest_wait_seconds",
            "Age of the oldest queued job, by runs-on label set.",
            oldest,
        )?;

        self.encode_waits(&mut encoder)?;

        let runs = counts.runs_by_status.iter().map(|(s, n)| ([("status", s.as_str())], *n));
        gauges(&mut encoder, "metalfarm_runs", "Workflow runs, by status.", runs)?;

        let deliveries = &counts.deliveries;
        counter(
            &mut encoder,
            "metalfarm_webhook_deliveries_received",
            "Webhook deliveries stored (redeliveries of a stored one not counted).",
            deliveries.webhooks(),
        )?;
        counter(
            &mut encoder,
            "metalfarm_webhook_deliveries_processed",
            "Webhook deliveries processed.",
            deliveries.webhooks_processed(),
        )?;
        gauge(
            &mut encoder,
            "metalfarm_webhook_deliveries_unprocessed",
            "Webhook deliveries stored and not processed yet.",
            deliveries.unprocessed,
        )?;
        counter(
            &mut encoder,
            "metalfarm_scheduled_events",
            "Events the cron fired for `schedule` triggers (one per workflow, cron entry and minute).",
            deliveries.scheduled,
        )?;
        counter(
            &mut encoder,
            "metalfarm_dispatched_events",
            "workflow_dispatch events made through the REST API.",
            deliveries.dispatched,
        )?;
        gauge(
            &mut encoder,
            "metalfarm_outbox_backlog",
            "Check-run states not delivered to the forge yet.",
            counts.outbox_backlog,
        )
    }
}

impl Scrape {
    /// The histogram of `started_at - created_at`, one per label set.
    fn encode_waits(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        // Summed per normalised label set: (count, sum, cumulative count per bound).
        let mut waits: BTreeMap<String, (i64, i64, Vec<i64>)> = BTreeMap::new();
        for w in &self.counts.job_waits {
            let entry = waits
                .entry(label_set(&w.runs_on))
                .or_insert_with(|| (0, 0, vec![0; WAIT_BUCKETS_SECONDS.len()]));
            entry.0 += w.count;
            entry.1 += w.sum_ms;
            entry.2.iter_mut().zip(&w.at_most).for_each(|(sum, n)| *sum += n);
        }
        let mut family = encoder.encode_descriptor(
            "metalfarm_job_wait_seconds",
            "Time from a job's creation to its start on a host, by runs-on label set.",
            None,
            MetricType::Histogram,
        )?;
        for (set, (count, sum_ms, at_most)) in &waits {
            // The encoder takes each bucket's own count and adds them up.
            let mut below = 0;
            let buckets: Vec<(f64, u64)> = WAIT_BUCKETS_SECONDS
                .iter()
                .zip(at_most)
                .map(|(bound, cumulative)| {
                    let own = cumulative - below;
                    below = *cumulative;
                    (*bound as f64, own.max(0) as u64)
                })
                .collect();
            let labels = [("runs_on", set.as_str())];
            family.encode_family(&labels)?.encode_histogram::<NoLabelSet>(
                *sum_ms as f64 / 1000.0,
                (*count).max(0) as u64,
                &buckets,
                None,
            )?;
        }
        Ok(())
    }
}

/// `runs-on` as stored (a JSON array) as one label value: lowercase (GitHub matches
/// labels ignoring case), sorted, deduplicated, joined with commas.
fn label_set(runs_on: &str) -> String {
    match serde_json::from_str::<Vec<String>>(runs_on) {
        Ok(labels) => {
            let mut labels: Vec<String> = labels.iter().map(|l| l.to_lowercase()).collect();
            labels.sort();
            labels.dedup();
            labels.join(",")
        }
        // Not written by this farm: shown as it is.
        Err(_) => runs_on.to_owned(),
    }
}

type Labels<'a, const N: usize> = [(&'static str, &'a str); N];

fn gauges<'a, const N: usize, V: EncodeGaugeValue>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    values: impl IntoIterator<Item = (Labels<'a, N>, V)>,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in values {
        ConstGauge::new(value).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: i64) -> Result<(), std::fmt::Error> {
    ConstGauge::new(value).encode(encoder.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

/// A counter family: `name` without `_total`, which the encoder appends.
fn counters<'a, const N: usize>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    values: impl IntoIterator<Item = (Labels<'a, N>, i64)>,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, value) in values {
        ConstCounter::new(value.max(0) as u64).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// A counter: `name` without `_total`, which the encoder appends.
fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: i64,
) -> Result<(), std::fmt::Error> {
    ConstCounter::new(value.max(0) as u64).encode(encoder.encode_descriptor(
        name,
        help,
        None,
        MetricType::Counter,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{JobWaits, QueuedJobs};

    fn encode(scrape: Scrape) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(scrape));
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &registry).unwrap();
        text
    }

    /// Lines of `text` that start with `prefix`.
    fn lines<'t>(text: &'t str, prefix: &str) -> Vec<&'t str> {
        text.lines().filter(|l| l.starts_with(prefix)).collect()
    }

    #[test]
    fn one_label_set_written_two_ways_is_one_series() {
        let waits = |runs_on: &str, count, sum_ms, at_most: [i64; 14]| JobWaits {
            runs_on: runs_on.into(),
            count,
            sum_ms,
            at_most: at_most.to_vec(),
        };
        let counts = FarmCounts {
            queued_jobs: vec![
                QueuedJobs {
                    runs_on: r#"["AMD64","self-hosted"]"#.into(),
                    count: 2,
                    oldest_created_at: 40_000,
                },
                QueuedJobs {
                    runs_on: r#"["self-hosted","amd64"]"#.into(),
                    count: 1,
                    oldest_created_at: 10_000,
                },
            ],
            // One job waited 3 s, two waited 40 s, one 2 h.
            job_waits: vec![
                waits(r#"["AMD64","self-hosted"]"#, 2, 43_000, [0, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2]),
                waits(r#"["self-hosted","amd64"]"#, 2, 7_240_000, [0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2]),
            ],
            ..FarmCounts::default()
        };
        let text = encode(Scrape { counts, labels: Vec::new(), now_ms: 100_000 });
        assert_eq!(
            lines(&text, "metalfarm_queued_jobs{"),
            [r#"metalfarm_queued_jobs{runs_on="amd64,self-hosted"} 3"#]
        );
        assert_eq!(
            lines(&text, "metalfarm_queued_job_oldest_wait_seconds{"),
            [r#"metalfarm_queued_job_oldest_wait_seconds{runs_on="amd64,self-hosted"} 90.0"#]
        );
        let buckets: Vec<_> = lines(&text, "metalfarm_job_wait_seconds_bucket")
            .iter()
            .map(|l| l.trim_start_matches("metalfarm_job_wait_seconds_bucket{runs_on=\"amd64,self-hosted\","))
            .collect();
        assert_eq!(
            buckets,
            [
                r#"le="1"} 0"#,
                r#"le="5"} 1"#,
                r#"le="15"} 1"#,
                r#"le="30"} 1"#,
                r#"le="60"} 3"#,
                r#"le="120"} 3"#,
                r#"le="300"} 3"#,
                r#"le="600"} 3"#,
                r#"le="1800"} 3"#,
                r#"le="3600"} 3"#,
                r#"le="7200"} 4"#,
                r#"le="14400"} 4"#,
                r#"le="28800"} 4"#,
                r#"le="86400"} 4"#,
                r#"le="+Inf"} 4"#,
            ]
        );
        assert_eq!(
            [
                lines(&text, "metalfarm_job_wait_seconds_sum"),
                lines(&text, "metalfarm_job_wait_seconds_count")
            ]
            .concat(),
            [
                r#"metalfarm_job_wait_seconds_sum{runs_on="amd64,self-hosted"} 7283.0"#,
                r#"metalfarm_job_wait_seconds_count{runs_on="amd64,self-hosted"} 4"#
            ]
        );
    }

    #[test]
    fn label_sets_ignore_case_order_and_repeats() {
        assert_eq!(label_set(r#"["self-hosted","AMD64","amd64"]"#), "amd64,self-hosted");
        assert_eq!(label_set(r#"["ubuntu-latest"]"#), "ubuntu-latest");
        assert_eq!(label_set("not json"), "not json");
    }
}
