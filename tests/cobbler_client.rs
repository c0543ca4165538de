//! The farm's Cobbler client (`metalfarm::provision::cobbler`) against the real test
//! Cobbler: its answers read right, a wrong password is refused at once, a missing system
//! is named, and a cobblerd restart — which forgets every login — is logged in again.
//!
//! One test restarts the machine's cobblerd: it is alone in its binary, and cargo runs
//! test binaries one after another.

mod common;

use std::process::Command;
use std::time::Duration;

use common::cobbler::{cobbler_dir, PowerLab, TestCobbler};
use common::testhost::TestHosts;
use metalfarm::provision::cobbler::{Backoff, CobblerClient};
use metalfarm::provision::{PowerState, ProvisionError, Provisioner};

fn client(cobbler: &TestCobbler, password: &str) -> CobblerClient {
    CobblerClient::new(cobbler.url(), cobbler.user(), password)
        .expect("a client")
        .with_backoff(Backoff(vec![Duration::from_millis(300); 10]))
}

fn cobbler_sh(action: &str) {
    let out = Command::new(cobbler_dir().join("cobbler.sh")).arg(action).output().expect("cobbler.sh");
    assert!(out.status.success(), "cobbler.sh {action}: {}", String::from_utf8_lossy(&out.stderr));
}

fn cobblerd_pid() -> String {
    let out = Command::new("pgrep").args(["-f", "bin/cobblerd"]).output().expect("pgrep");
    let pid = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(!pid.is_empty(), "no cobblerd runs");
    pid
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_reads_cobbler_and_logs_in_again_after_a_restart() {
    let cobbler = TestCobbler::start();
    let hosts = TestHosts::start(1);
    let lab = PowerLab::start(&cobbler, &hosts);
    let system = lab.system_name(0).to_owned();
    let farm = client(&cobbler, &cobbler.password());

    assert_eq!(farm.version().await.unwrap(), "3.3.10");
    assert!(farm.system_exists(&system).await.unwrap());
    assert!(!farm.system_exists("mf-nobody").await.unwrap());
    assert!(!farm.netboot_enabled(&system).await.unwrap());
    // Through the system's fence agent; needs the login.
    assert_eq!(farm.power_status(&system).await.unwrap(), PowerState::On);
    let missing = farm.power_status("mf-nobody").await.unwrap_err();
    assert!(matches!(missing, ProvisionError::NoSuchSystem { .. }), "{missing:?}");
    assert!(missing.to_string().contains("has no system named `mf-nobody`"), "{missing}");

    let wrong = client(&cobbler, "not-the-password").power_status(&system).await.unwrap_err();
    match &wrong {
        // At once: a wrong password does not get better by waiting.
        ProvisionError::Refused { call, attempts, message, .. } => {
            assert_eq!((call.as_str(), *attempts), ("login", 1), "{wrong}");
            assert!(message.contains("login failed"), "{wrong}");
        }
        other => panic!("{other:?}"),
    }

    // cobblerd keeps logins in memory only: after a restart the client's token is unknown.
    let before = cobblerd_pid();
    cobbler_sh("stop");
    cobbler_sh("start");
    assert_ne!(cobblerd_pid(), before, "cobblerd was not restarted");
    assert_eq!(farm.power_status(&system).await.unwrap(), PowerState::On);
}
