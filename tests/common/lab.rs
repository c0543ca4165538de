//! A farm's lab made of test hosts: the config sections that make [`TestHosts`] the
//! farm's hosts, and the runner's view of one test host.

use std::sync::Arc;
use std::time::Duration;

use metalfarm::exec::host::HostTarget;
use metalfarm::exec::job::{run_job, JobDefinition, JobOutcome, RunnerEvent};
use metalfarm::exec::keys::load_or_generate_farm_key;
use metalfarm::exec::ssh::{HostKeyPolicy, SshOptions};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::testhost::{TestHost, TestHosts};

/// How the job runner reaches `host`: the harness's farm key, its pinned host key,
/// quick keepalives.
pub fn target(hosts: &TestHosts, host: &TestHost) -> HostTarget {
    let key = load_or_generate_farm_key(hosts.farm_key_path()).expect("the test farm key");
    HostTarget {
        name: host.name().to_owned(),
        address: host.address(),
        port: host.port(),
        arch: "X64".into(),
        ssh: SshOptions {
            user: "root".into(),
            key: Arc::new(key),
            connect_timeout: Duration::from_secs(5),
            keepalive_interval: Duration::from_secs(1),
            keepalive_max: 3,
        },
        host_key: HostKeyPolicy::Pinned(host.host_key()),
        reconnect_grace: Duration::from_secs(3),
    }
}

/// `[ssh]` with the test hosts' farm key and quick keepalives, and one `[[host]]` per
/// `(farm name, labels)` on the test hosts in order.
pub fn lab_toml(hosts: &TestHosts, lab: &[(&str, &[&str])]) -> String {
    let mut toml = format!(
        "[ssh]\nprivate_key_file = \"{}\"\nconnect_timeout = \"5s\"\nkeepalive_interval = \"1s\"\nkeepalive_max = 3\n\
         reconnect_grace = \"2s\"\n",
        hosts.farm_key_path().display()
    );
    for (host, (name, labels)) in hosts.hosts().iter().zip(lab) {
        let labels: Vec<String> = labels.iter().map(|l| format!("\"{l}\"")).collect();
        toml.push_str(&format!(
            "\n[[host]]\nname = \"{name}\"\naddress = \"{}\"\nport = {}\nlabels = [{}]\n",
            host.address(),
            host.port(),
            labels.join(", ")
        ));
    }
    toml
}

/// Runs `definition` straight on `target` (no server), bounded to two minutes: its
/// outcome and the log lines the runner sent.
pub async fn run_job_logged(
    definition: &JobDefinition,
    target: &HostTarget,
    cancel: CancellationToken,
) -> (JobOutcome, Vec<String>) {
    let (events, mut heard) = mpsc::channel(64);
    let collector = tokio::spawn(async move {
        let mut log = Vec::new();
        while let Some(event) = heard.recv().await {
            if let RunnerEvent::Log(lines) = event {
                log.extend(lines);
            }
        }
        log
    });
    let outcome = tokio::time::timeout(Duration::from_secs(120), run_job(definition, target, events, cancel))
        .await
        .expect("the job ends within two minutes");
    (outcome, collector.await.expect("collector"))
}

/// A job (check run "Artifacts / build") that prints a line and uploads the artifact
/// `test-results`: `logs/kernel.log` and `result.txt`.
pub const UPLOADING: &str = r###"
name: Artifacts
on: push
jobs:
  build:
    runs-on: [self-hosted, kvm]
    steps:
      - run: echo the kernel booted
      - run: |
          mkdir -p out/logs
          printf 'kernel log\n' > out/logs/kernel.log
          printf 'result: pass\n' > out/result.txt
      - uses: actions/upload-artifact@v4
        with: {name: test-results, path: out/}
"###;

/// A farm reporting to a test forge, its lab one test host `kvm-a` (label `kvm`), the
/// workflows of `Codertocat/Hello-World` in its `workflows/`.
pub struct OneHostFarm {
    pub hosts: TestHosts,
    pub forge: super::forge::TestForge,
    pub server: super::farm::FarmServer,
}

impl OneHostFarm {
    /// Starts it with `server_keys` in `[server]`.
    pub async fn start(server_keys: &str) -> OneHostFarm {
        use super::farm::{app_key_pair, FarmServer};
        let hosts = TestHosts::start(1);
        let (private, public) = app_key_pair();
        let forge = super::forge::TestForge::start(public).await;
        let config = format!(
            "[[repo]]\nname = \"Codertocat/Hello-World\"\nworkflows = [\"workflows/*.yml\"]\n\n{}",
            lab_toml(&hosts, &[("kvm-a", &["kvm"])])
        );
        let server = FarmServer::start_reporting_with(&forge.api_url(), &private, server_keys, &config);
        OneHostFarm { hosts, forge, server }
    }

    /// Makes `workflow` the repository's workflow, pushes `refs/heads/master`, and waits
    /// until the check run named `check_name` is completed; that check run.
    pub async fn push_and_finish(&self, workflow: &str, check_name: &str) -> super::forge::ForgeCheckRun {
        self.server.write("workflows/ci.yml", workflow);
        super::farm::push_master(&self.server, "d-one-job").await;
        self.forge
            .wait_for("the job completed", |runs| {
                runs.iter().any(|r| r.name == check_name && r.status == "completed")
            })
            .await;
        self.forge.check_runs().into_iter().find(|r| r.name == check_name).expect("the job's check run")
    }

    /// A job as `GET /api/v1/jobs/{id}` shows it, by its check run.
    pub async fn job(&self, check: &super::forge::ForgeCheckRun) -> serde_json::Value {
        let url = self.server.url(&format!("/api/v1/jobs/{}", check.external_id));
        serde_json::from_str(&super::farm::get(&url).await.body).expect("the job as JSON")
    }
}

/// A [`OneHostFarm`] that has run one pushed job.
pub struct OneJobFarm {
    pub hosts: TestHosts,
    pub forge: super::forge::TestForge,
    pub server: super::farm::FarmServer,
    /// The job's check run, completed.
    pub check: super::forge::ForgeCheckRun,
}

/// Starts a [`OneHostFarm`] with `server_keys` in `[server]`, pushes `workflow` and waits
/// until the check run named `check_name` is completed.
pub async fn run_one_job(server_keys: &str, workflow: &str, check_name: &str) -> OneJobFarm {
    let farm = OneHostFarm::start(server_keys).await;
    let check = farm.push_and_finish(workflow, check_name).await;
    let OneHostFarm { hosts, forge, server } = farm;
    OneJobFarm { hosts, forge, server, check }
}
