//! Reinstalling hosts through a real Cobbler (PyPI, on loopback): a real `metalfarm
//! serve`, real OpenSSH test hosts, and the power lab — Cobbler's fence agent for each
//! test host's system "reinstalls" the host when it powers on into the installer (new
//! host keys, wiped state, new boot id) and calls Cobbler's `nopxe` as a kickstart's
//! `%post` does, after announcing the new key to the farm.

mod common;

use std::time::{Duration, Instant};

use common::cli::{admin_token, cli, ok};
use common::cobbler::{CobblerProxy, Install, PowerLab, TestCobbler};
use common::farm::{app_key_pair, host_json, job_log, push_master, wait_for_host_state, FarmServer};
use common::forge::{ForgeCheckRun, TestForge};
use common::lab::lab_toml;
use common::testhost::TestHosts;
use serde_json::Value;

const PROFILE: &str = "metalfarm-test";

/// `[cobbler]` for `url`, and the lab's hosts (`kvm-1`, `kvm-2`, … on the test hosts)
/// with their Cobbler system names.
fn farm_toml(
    cobbler: &TestCobbler,
    url: &str,
    lab: &PowerLab,
    hosts: &TestHosts,
    install_timeout: &str,
) -> String {
    let names: Vec<String> = (1..=hosts.hosts().len()).map(|i| format!("kvm-{i}")).collect();
    let labels: &[&str] = &["kvm", "hostprovisioning"];
    let entries: Vec<(&str, &[&str])> = names.iter().map(|n| (n.as_str(), labels)).collect();
    let mut toml = lab_toml(hosts, &entries);
    for (i, name) in names.iter().enumerate() {
        toml = toml.replace(
            &format!("name = \"{name}\"\n"),
            &format!("name = \"{name}\"\ncobbler_system = \"{}\"\n", lab.system_name(i)),
        );
    }
    format!(
        "[[repo]]\nname = \"Codertocat/Hello-World\"\nworkflows = [\"workflows/*.yml\"]\n\n\
         [cobbler]\nurl = \"{url}\"\nusername = \"{}\"\npassword_file = \"{}\"\ndefault_profile = \"{PROFILE}\"\n\
         install_timeout = \"{install_timeout}\"\n\n{toml}",
        cobbler.user(),
        cobbler.password_file().display(),
    )
}

async fn farm(server_keys: &str, config: &str) -> (FarmServer, TestForge) {
    let (private, public) = app_key_pair();
    let forge = TestForge::start(public).await;
    let server = FarmServer::start_reporting_with(&forge.api_url(), &private, server_keys, config);
    (server, forge)
}

fn named(runs: &[ForgeCheckRun], name: &str) -> Option<ForgeCheckRun> {
    runs.iter().find(|r| r.name == name).cloned()
}

fn history(host: &Value) -> String {
    host["history"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| format!("{} -> {}: {}\n", e["from"], e["to"], e["reason"].as_str().unwrap_or_default()))
        .collect()
}

async fn wait_for_check_run(forge: &TestForge, name: &str, within: Duration) -> ForgeCheckRun {
    let deadline = Instant::now() + within;
    loop {
        if let Some(run) = named(&forge.check_runs(), name).filter(|r| r.status == "completed") {
            return run;
        }
        assert!(Instant::now() < deadline, "{name} never completed: {:#?}", forge.check_runs());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

const PROVISIONED: &str = r###"
name: Sanity
on: push
jobs:
  sanity:
    runs-on: [self-hosted, hostprovisioning, kvm]
    steps:
      - uses: metalfarm/provision@v1
      - name: on the fresh system
        run: |
          test ! -e /root/left-by-the-old-system && echo "the old system's files are gone"
          echo "boot $(cat /proc/sys/kernel/random/boot_id)"
"###;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_starts_with_provision_runs_its_next_step_on_the_fresh_host() {
    let cobbler = TestCobbler::start();
    let hosts = TestHosts::start(1);
    let lab = PowerLab::start(&cobbler, &hosts);
    let (server, forge) = farm("", &farm_toml(&cobbler, cobbler.url(), &lab, &hosts, "60s")).await;
    server.write("workflows/sanity.yml", PROVISIONED);
    let store = server.store().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while store.host_key("kvm-1").await.unwrap().is_none() {
        assert!(Instant::now() < deadline, "kvm-1's key was never pinned");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let old_key = hosts.host(0).host_key();
    let old_boot = hosts.host(0).boot_id();
    assert!(hosts.host(0).run("touch /root/left-by-the-old-system").status.success());

    push_master(&server, "d-provision").await;
    let run = wait_for_check_run(&forge, "Sanity / sanity", Duration::from_secs(90)).await;
    assert_eq!(run.conclusion.as_deref(), Some("success"), "{run:#?}");
    assert_eq!(lab.install_count(0), 1);
    let new_key = hosts.host(0).host_key();
    assert_ne!(new_key, old_key, "the install made new host keys");
    // The key the install announced is pinned: the next job trusts it, and only it.
    assert_eq!(store.host_key("kvm-1").await.unwrap(), Some(new_key));
    let log = job_log(&server, &run.external_id).await;
    assert!(log.contains("Reinstalling kvm-1 with profile metalfarm-test"), "{log}");
    assert!(log.contains("Attempt 1: the install finished, network boot is off"), "{log}");
    assert!(log.contains("the old system's files are gone"), "{log}");
    assert!(!log.contains(&format!("boot {old_boot}")), "{log}");
    assert!(log.contains(&format!("boot {}", hosts.host(0).boot_id())), "{log}");
    let kvm1 = host_json(&server, "kvm-1").await;
    assert_eq!(kvm1["state"], "ready", "{kvm1:#}");
    assert!(history(&kvm1).contains("reinstalled with profile metalfarm-test"), "{}", history(&kvm1));
    assert_eq!(forge.violations(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_install_that_never_finishes_moves_the_job_and_the_host_is_repaired_then_broken() {
    let cobbler = TestCobbler::start();
    let hosts = TestHosts::start(2);
    let lab = PowerLab::start(&cobbler, &hosts);
    lab.set_install(0, Install::Hangs);
    let config = farm_toml(&cobbler, cobbler.url(), &lab, &hosts, "2s");
    let (server, forge) = farm("broken_after = 2\n", &config).await;
    server.write("workflows/sanity.yml", PROVISIONED);
    let token = admin_token(&server);
    // The job goes to kvm-1 first: kvm-2 waits locked until kvm-1 gave up.
    ok(&server, &token, &["host", "lock", "kvm-2", "--reason", "not yet"]);
    push_master(&server, "d-hangs").await;
    let repairing = wait_for_host_state(&server, "kvm-1", "repairing", Duration::from_secs(60)).await;
    let reason = repairing["state_reason"].as_str().unwrap_or_default().to_owned();
    assert!(reason.contains("did not finish within 2s (twice"), "{repairing:#}");
    // Powered on into the installer twice: the reinstall, then one more power cycle.
    assert!(lab.install_count(0) >= 2, "{}", lab.power_log(0));
    ok(&server, &token, &["host", "unlock", "kvm-2"]);

    let run = wait_for_check_run(&forge, "Sanity / sanity", Duration::from_secs(90)).await;
    assert_eq!(run.conclusion.as_deref(), Some("success"), "{run:#?}");
    assert_eq!(run.title, "Succeeded on kvm-2");
    assert!(run.summary.contains("Retried after infrastructure failures"), "{}", run.summary);
    assert!(run.summary.contains("did not finish within 2s"), "{}", run.summary);
    let log = job_log(&server, &run.external_id).await;
    assert!(log.contains("Attempt 1 did not finish within 2s: power-cycling kvm-1 once more"), "{log}");

    // The repair loop reinstalls kvm-1 in the background; it hangs again: the second
    // failure in a row quarantines it.
    let broken = wait_for_host_state(&server, "kvm-1", "broken", Duration::from_secs(90)).await;
    let broken_history = history(&broken);
    assert!(broken_history.contains("repair: reinstalling with profile metalfarm-test"), "{broken_history}");
    assert!(
        broken["state_reason"].as_str().unwrap_or_default().contains("2 infrastructure failures in a row"),
        "{broken:#}"
    );
    assert_eq!(forge.violations(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cobbler_stopped_mid_job_is_an_infrastructure_failure_and_the_host_is_repaired_when_it_is_back() {
    let cobbler = TestCobbler::start();
    let hosts = TestHosts::start(1);
    let lab = PowerLab::start(&cobbler, &hosts);
    // Slow installs: Cobbler goes away while the farm waits for this one.
    lab.set_install_delay(0, Duration::from_secs(4));
    let proxy = CobblerProxy::start(&cobbler);
    let config = farm_toml(&cobbler, &proxy.url(), &lab, &hosts, "60s");
    let (server, forge) = farm("infra_retries = 0\n", &config).await;
    server.write("workflows/sanity.yml", PROVISIONED);
    push_master(&server, "d-cobbler-gone").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while lab.install_count(0) == 0 {
        assert!(Instant::now() < deadline, "the install never started: {}", lab.power_log(0));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    proxy.stop();

    let run = wait_for_check_run(&forge, "Sanity / sanity", Duration::from_secs(60)).await;
    // Not the job's failure: the farm's.
    assert_eq!(run.conclusion.as_deref(), Some("failure"), "{run:#?}");
    assert_eq!(run.title, "Infrastructure failure");
    assert!(run.summary.contains("is unreachable after 4 attempts"), "{}", run.summary);
    assert_eq!(host_json(&server, "kvm-1").await["state"], "repairing");

    // Cobbler is back: the repair loop reinstalls the host and it is ready again.
    proxy.start_again();
    let ready = wait_for_host_state(&server, "kvm-1", "ready", Duration::from_secs(90)).await;
    assert!(
        history(&ready).contains("repair: reinstalled with profile metalfarm-test"),
        "{}",
        history(&ready)
    );
    let store = server.store().await;
    assert_eq!(store.host_key("kvm-1").await.unwrap(), Some(hosts.host(0).host_key()));
    assert_eq!(forge.violations(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_add_warns_loudly_when_the_cobbler_system_is_missing() {
    let cobbler = TestCobbler::start();
    let hosts = TestHosts::start(1);
    let lab = PowerLab::start(&cobbler, &hosts);
    let mut config = farm_toml(&cobbler, cobbler.url(), &lab, &hosts, "60s");
    // A host of the config whose system nobody added to Cobbler.
    config.push_str(
        "\n[[host]]\nname = \"kvm-2\"\ncobbler_system = \"ghost-0\"\naddress = \"127.0.0.1\"\nport = 9\nlabels = [\"kvm\"]\n",
    );
    let (server, _forge) = farm("", &config).await;
    let token = admin_token(&server);
    // At start, it is logged loudly.
    let logged = server.wait_for_log("has no system named `ghost-0`", Duration::from_secs(30));
    assert!(logged.contains("WARN") && logged.contains("host kvm-2"), "{logged}");

    let missing =
        cli(&server, Some(&token), &["host", "add", "ghost-1", "--label", "kvm", "--address", "127.0.0.1"]);
    assert_eq!(missing.code, 0, "{missing:?}");
    assert!(missing.stderr.contains("WARNING: host ghost-1:"), "{missing:?}");
    assert!(missing.stderr.contains("has no system named `ghost-1`"), "{missing:?}");

    let named = lab.system_name(0).to_owned();
    let present = cli(
        &server,
        Some(&token),
        &["host", "add", "kvm-9", "--label", "kvm", "--address", "127.0.0.1", "--cobbler-system", &named],
    );
    assert_eq!(present.code, 0, "{present:?}");
    assert!(!present.stderr.contains("WARNING"), "{present:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metalfarm_provision_reinstalls_a_host_outside_any_job() {
    let cobbler = TestCobbler::start();
    let hosts = TestHosts::start(1);
    let lab = PowerLab::start(&cobbler, &hosts);
    let config = farm_toml(&cobbler, cobbler.url(), &lab, &hosts, "60s");
    let (server, _forge) = farm("", &config).await;
    let token = admin_token(&server);
    assert!(hosts.host(0).run("touch /root/left-by-the-old-system").status.success());

    let waited = cli(&server, Some(&token), &["provision", "kvm-1", "--profile", PROFILE, "--wait"]);
    assert_eq!(waited.code, 0, "{waited:?}");
    assert!(waited.stdout.contains("reinstalling host kvm-1"), "{waited:?}");
    assert!(waited.stdout.contains("repair: reinstalled with profile metalfarm-test"), "{waited:?}");
    assert!(waited.stdout.ends_with("host kvm-1 is ready\n"), "{waited:?}");
    assert_eq!(lab.install_count(0), 1);
    assert!(!hosts.host(0).state_dir().join("left-by-the-old-system").exists());
    let store = server.store().await;
    assert_eq!(store.host_key("kvm-1").await.unwrap(), Some(hosts.host(0).host_key()));

    // An unknown host is refused.
    let unknown = cli(&server, Some(&token), &["provision", "nope"]);
    assert_eq!(unknown.code, 1, "{unknown:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_cancelled_during_its_reinstall_leaves_the_host_to_the_repair_loop() {
    let cobbler = TestCobbler::start();
    let hosts = TestHosts::start(1);
    let lab = PowerLab::start(&cobbler, &hosts);
    lab.set_install_delay(0, Duration::from_secs(8));
    let config = farm_toml(&cobbler, cobbler.url(), &lab, &hosts, "60s");
    let (server, forge) = farm("", &config).await;
    server.write(
        "workflows/sanity.yml",
        &format!("{PROVISIONED}      - if: always()\n        name: clean up\n        run: echo cleaned up\n"),
    );
    push_master(&server, "d-cancel-install").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while lab.install_count(0) == 0 {
        assert!(Instant::now() < deadline, "the install never started: {}", lab.power_log(0));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let job = named(&forge.check_runs(), "Sanity / sanity").expect("the check run").external_id;
    let token = admin_token(&server);
    ok(&server, &token, &["job", "cancel", &job]);

    let run = wait_for_check_run(&forge, "Sanity / sanity", Duration::from_secs(60)).await;
    assert_eq!(run.conclusion.as_deref(), Some("cancelled"), "{run:#?}");
    let log = job_log(&server, &job).await;
    assert!(log.contains("Cancelled while kvm-1 was being reinstalled"), "{log}");
    // The host is mid-install: nothing more runs on it, not even `always()` steps.
    assert!(log.contains("Skipped \"clean up\": kvm-1 is mid-install"), "{log}");
    assert!(!log.contains("cleaned up\n"), "{log}");
    // Not ready for the next job, and not the host's fault: repaired, no failure counted.
    let repairing = wait_for_host_state(&server, "kvm-1", "repairing", Duration::from_secs(30)).await;
    assert_eq!(repairing["consecutive_failures"], 0, "{repairing:#}");
    let ready = wait_for_host_state(&server, "kvm-1", "ready", Duration::from_secs(90)).await;
    assert!(
        history(&ready).contains("repair: reinstalled with profile metalfarm-test"),
        "{}",
        history(&ready)
    );
    let store = server.store().await;
    assert_eq!(store.host_key("kvm-1").await.unwrap(), Some(hosts.host(0).host_key()));
    assert_eq!(forge.violations(), Vec::<String>::new());
}
