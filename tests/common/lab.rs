//! A farm's lab made of test hosts: the config sections that make [`TestHosts`] the
//! farm's hosts.

use super::testhost::TestHosts;

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
