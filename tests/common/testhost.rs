//! Real OpenSSH test hosts: one `sshd` per host, each on its own loopback address
//! (`127.b.c.d`, never `127.0.x.x`), inside its own PID, mount and UTS namespaces.
//!
//! A host has its own process list, hostname, `/root` (its [`Machine::state_dir`]),
//! a fresh `/tmp` and boot id per boot, ed25519 host keys, and the farm key in its
//! `authorized_keys`. Its `reboot` command takes it down (every process killed) and
//! brings it back after [`REBOOT_DELAY`] with a new boot id. The namespace's init is
//! `tests/testhost/boot.sh`; killing it kills the whole host. Everything stops on
//! Drop, and a host also stops by itself when the test process dies.
//!
//! Faults: [`Machine::kill`] (power-off: connections close at once),
//! [`Machine::freeze`] (a silent link: connections stay open, nothing answers; only
//! keepalives notice), [`Machine::reinstall`] (new host keys and state; its
//! installer's part alone is [`Machine::wipe_and_rekey`]).
//!
//! Needs root, `unshare`/`nsenter` (util-linux) and `openssh-server`/`openssh-client`
//! (`scripts/test.sh` installs them). The methods block (they run `ssh-keygen` and
//! wait for sshd); from async tests, a few hundred milliseconds of blocking is fine.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a rebooted host stays down.
pub const REBOOT_DELAY: Duration = Duration::from_millis(500);
/// How long a host may take to answer SSH after it boots.
const BOOT_TIMEOUT: Duration = Duration::from_secs(20);

/// A set of test hosts sharing one farm key. Dropping it stops them all.
pub struct TestHosts {
    hosts: Vec<TestHost>,
    farm_key: PathBuf,
    // Last: removed after every host is stopped.
    _dir: tempfile::TempDir,
}

/// A folder the test hosts see too. Not under /tmp: each host mounts its own /tmp,
/// which would hide it — the target dir's, unless the checkout itself is under /tmp
/// (then /var/tmp).
pub fn scratch_dir(prefix: &str) -> tempfile::TempDir {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let base = if target.starts_with("/tmp") { Path::new("/var/tmp") } else { target };
    tempfile::Builder::new().prefix(prefix).tempdir_in(base).expect("a folder the test hosts see")
}

impl TestHosts {
    /// Starts `n` hosts (`host-1` … `host-n`) and waits until each answers SSH.
    pub fn start(n: usize) -> TestHosts {
        preflight();
        let dir = scratch_dir("testhosts-");
        let farm_key = dir.path().join("farm_key");
        ssh_keygen(&farm_key, "metalfarm-test-farm");
        let farm_public = std::fs::read_to_string(farm_key.with_extension("pub")).expect("farm public key");
        let hosts: Vec<TestHost> =
            (1..=n).map(|i| Machine::create(dir.path(), &format!("host-{i}"), farm_public.trim())).collect();
        // Booted together: all spawned first, then each waited for.
        for host in &hosts {
            host.spawn();
        }
        for host in &hosts {
            host.wait_until_up();
        }
        TestHosts { hosts, farm_key, _dir: dir }
    }

    pub fn hosts(&self) -> &[TestHost] {
        &self.hosts
    }

    /// The `i`th host, from 0.
    pub fn host(&self, i: usize) -> &TestHost {
        &self.hosts[i]
    }

    /// The farm's private key (OpenSSH format, ed25519, no passphrase): every host
    /// lets `root` in with it.
    pub fn farm_key_path(&self) -> &Path {
        &self.farm_key
    }

    /// The farm's public key, OpenSSH text (`ssh-ed25519 AAAA… comment`).
    pub fn farm_public_key(&self) -> String {
        std::fs::read_to_string(self.farm_key.with_extension("pub"))
            .expect("farm public key")
            .trim()
            .to_string()
    }
}

/// One host; dropping it kills the host. Its methods are [`Machine`]'s.
pub struct TestHost(Arc<Machine>);

impl std::ops::Deref for TestHost {
    type Target = Machine;

    fn deref(&self) -> &Machine {
        &self.0
    }
}

impl TestHost {
    /// The host as a shared handle, for a thread that powers it (the power lab's
    /// fence agent) while the test holds the [`TestHost`].
    pub fn machine(&self) -> Arc<Machine> {
        Arc::clone(&self.0)
    }
}

/// A test host's machine. Methods take `&self` so a test can kill a host while
/// another thread talks to it.
pub struct Machine {
    name: String,
    address: Ipv4Addr,
    port: u16,
    /// `<dir>/root` is the host's /root, `<dir>/etc` its sshd files, `<dir>/run` its
    /// boot id and sshd log.
    dir: PathBuf,
    farm_public: String,
    running: Mutex<Option<Running>>,
}

/// A booted host: `unshare`, whose child is the namespace's init.
struct Running {
    unshare: Child,
    /// The init's PID as the harness sees it.
    init_pid: u32,
}

impl Machine {
    /// The folder first on the host's PATH: its `reboot`, copied from `tests/testhost/bin`
    /// into the host's folder (the checkout may be under /tmp, which the host hides).
    fn bin_dir(&self) -> PathBuf {
        self.dir.join("bin")
    }

    fn create(parent: &Path, name: &str, farm_public: &str) -> TestHost {
        let address = next_address();
        let host = Machine {
            name: name.to_string(),
            address,
            port: free_port(address),
            dir: parent.join(name),
            farm_public: farm_public.to_string(),
            running: Mutex::new(None),
        };
        host.install();
        TestHost(Arc::new(host))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The host's loopback address, e.g. `127.18.4.1`.
    pub fn address(&self) -> String {
        self.address.to_string()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn socket_addr(&self) -> SocketAddr {
        SocketAddr::from((self.address, self.port))
    }

    /// The host's /root on the harness side (kept across reboots, wiped by a reinstall).
    pub fn state_dir(&self) -> PathBuf {
        self.dir.join("root")
    }

    /// The host's public key, OpenSSH text without comment: `ssh-ed25519 AAAA…`.
    pub fn host_key(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("etc/ssh_host_ed25519_key.pub")).expect("host key");
        text.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
    }

    /// The current boot's id, as the host's `/proc/sys/kernel/random/boot_id` shows it.
    pub fn boot_id(&self) -> String {
        let path = self.dir.join("run/boot_id");
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            // The init rewrites it in place at each boot: wait out a half-written one.
            let id = std::fs::read_to_string(&path).unwrap_or_default().trim().to_string();
            if id.len() == 36 {
                return id;
            }
            assert!(Instant::now() < deadline, "{}: no boot id in {}", self.name, path.display());
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn is_running(&self) -> bool {
        let mut running = self.running.lock().unwrap();
        match running.as_mut() {
            Some(r) => r.unshare.try_wait().expect("wait for unshare").is_none(),
            None => false,
        }
    }

    /// Kills the host at once (its init, hence sshd and every process on it). It
    /// stays down until [`Machine::start`]. Returns when all its processes are gone.
    pub fn kill(&self) {
        if let Some(mut running) = self.running.lock().unwrap().take() {
            // SAFETY: kill(2) on a PID we own; harmless if it already ended.
            unsafe { libc::kill(running.init_pid as libc::pid_t, libc::SIGKILL) };
            // The kernel reaps the namespace's processes before the init's exit is
            // reported, so unshare ends after all of them.
            let _ = running.unshare.wait();
        }
    }

    /// Boots a killed host again (same keys, same /root, new boot id) and waits until
    /// it answers SSH.
    pub fn start(&self) {
        assert!(!self.is_running(), "{} is already running", self.name);
        self.spawn();
        self.wait_until_up();
    }

    /// Down, state wiped (/root, host keys, machine id), new host keys and boot id,
    /// up again: as a reinstall by the provisioner.
    pub fn reinstall(&self) {
        self.kill();
        self.wipe_and_rekey();
        self.start();
    }

    /// The installer's part of a reinstall, on a host that is down: state wiped
    /// (/root, host keys, machine id) and new host keys. [`Machine::start`] boots it.
    pub fn wipe_and_rekey(&self) {
        assert!(!self.is_running(), "{} must be down to be reinstalled", self.name);
        std::fs::remove_dir_all(&self.dir).expect("wipe the host's state");
        self.install();
    }

    /// Stops (SIGSTOP) every process of the host but its init: connections stay open
    /// and nothing answers, as when the link is cut silently. [`Machine::thaw`]
    /// undoes it.
    pub fn freeze(&self) {
        let out = self.run("kill -STOP -1");
        assert!(out.status.success(), "freezing {}: {}", self.name, String::from_utf8_lossy(&out.stderr));
    }

    pub fn thaw(&self) {
        let out = self.run("kill -CONT -1");
        assert!(out.status.success(), "thawing {}: {}", self.name, String::from_utf8_lossy(&out.stderr));
    }

    /// Runs `command` with `sh -c` inside the host's namespaces (its process list,
    /// /tmp, /root), as the harness: for assertions such as "is that process alive".
    pub fn run(&self, command: &str) -> Output {
        let init_pid = self.running.lock().unwrap().as_ref().map(|r| r.init_pid);
        let init_pid = init_pid.unwrap_or_else(|| panic!("{} is not running", self.name));
        Command::new("nsenter")
            .args(["--target", &init_pid.to_string(), "--pid", "--mount", "--uts", "--"])
            .args(["sh", "-c", command])
            .env("PATH", format!("{}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", self.bin_dir().display()))
            .current_dir("/")
            .stdin(Stdio::null())
            .output()
            .expect("run nsenter")
    }

    /// Waits (bounded) until the host answers SSH again, e.g. after `reboot`.
    pub fn wait_until_up(&self) {
        let deadline = Instant::now() + BOOT_TIMEOUT;
        loop {
            if let Ok(stream) = TcpStream::connect_timeout(&self.socket_addr(), Duration::from_millis(200)) {
                stream.set_read_timeout(Some(Duration::from_secs(2))).expect("read timeout");
                let mut banner = String::new();
                if BufReader::new(stream).read_line(&mut banner).is_ok() && banner.starts_with("SSH-") {
                    return;
                }
            }
            if !self.is_running() || Instant::now() > deadline {
                let log = std::fs::read_to_string(self.dir.join("run/sshd.log")).unwrap_or_default();
                panic!("{} ({}) did not come up; sshd log:\n{log}", self.name, self.socket_addr());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Writes the host's files: host keys, authorized_keys, sshd_config, machine id.
    fn install(&self) {
        for sub in ["root", "etc", "run", "bin"] {
            std::fs::create_dir_all(self.dir.join(sub)).expect("host folders");
        }
        for entry in std::fs::read_dir(testhost_dir().join("bin")).expect("tests/testhost/bin") {
            let from = entry.expect("a file of tests/testhost/bin").path();
            let to = self.bin_dir().join(from.file_name().expect("a file name"));
            std::fs::copy(&from, &to).expect("a host command");
        }
        let etc = self.dir.join("etc");
        ssh_keygen(&etc.join("ssh_host_ed25519_key"), &format!("root@{}", self.name));
        std::fs::write(etc.join("authorized_keys"), format!("{}\n", self.farm_public))
            .expect("authorized_keys");
        let machine_id: String = std::fs::read_to_string("/proc/sys/kernel/random/uuid")
            .expect("a random uuid")
            .trim()
            .replace('-', "");
        std::fs::write(etc.join("machine-id"), format!("{machine_id}\n")).expect("machine-id");
        std::fs::write(self.dir.join("run/boot_id"), "").expect("boot_id");
        let config = format!(
            "ListenAddress {addr}\n\
             HostKey {etc}/ssh_host_ed25519_key\n\
             AuthorizedKeysFile {etc}/authorized_keys\n\
             PidFile {run}/sshd.pid\n\
             UsePAM no\n\
             StrictModes no\n\
             PermitRootLogin prohibit-password\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             Subsystem sftp internal-sftp\n\
             SetEnv PATH={bin}:/usr/local/bin:/usr/bin:/bin\n\
             PrintMotd no\n\
             PrintLastLog no\n\
             MaxSessions 100\n\
             MaxStartups 100:30:200\n\
             LogLevel ERROR\n",
            addr = self.socket_addr(),
            etc = etc.display(),
            run = self.dir.join("run").display(),
            bin = self.bin_dir().display(),
        );
        std::fs::write(etc.join("sshd_config"), config).expect("sshd_config");
    }

    /// Starts the namespace with boot.sh as its init; does not wait for sshd.
    fn spawn(&self) {
        let mut unshare = Command::new("unshare")
            .args(["--pid", "--fork", "--mount", "--uts", "--mount-proc", "--kill-child", "--"])
            .arg(testhost_dir().join("boot.sh"))
            .arg(&self.dir)
            .arg(&self.name)
            .arg(format!("{:.3}", REBOOT_DELAY.as_secs_f64()))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start unshare (util-linux)");
        let init_pid = init_pid_of(&mut unshare, &self.name);
        *self.running.lock().unwrap() = Some(Running { unshare, init_pid });
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        self.kill();
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        // A handle that outlived its TestHost may have booted it again.
        self.kill();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Closing the init's stdin shuts the host down (boot.sh's watchdog), should
        // a Running be dropped without `kill`.
        drop(self.unshare.stdin.take());
    }
}

/// The PID of unshare's only child (the namespace's init), as seen from here.
fn init_pid_of(unshare: &mut Child, name: &str) -> u32 {
    let path = format!("/proc/{0}/task/{0}/children", unshare.id());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let children = std::fs::read_to_string(&path).unwrap_or_default();
        if let Some(pid) = children.split_whitespace().next() {
            return pid.parse().expect("a PID");
        }
        if let Some(status) = unshare.try_wait().expect("wait for unshare") {
            panic!("{name}: unshare ended at once ({status}); the test hosts need root");
        }
        assert!(Instant::now() < deadline, "{name}: unshare started no init");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A loopback address no other test process uses: `127.b.c.d` from this process's
/// id and a counter, never in 127.0.0.0/16.
fn next_address() -> Ipv4Addr {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let block = std::process::id() * 4 + n / 254;
    Ipv4Addr::new(127, 1 + ((block >> 8) % 254) as u8, (block & 0xff) as u8, 1 + (n % 254) as u8)
}

/// A port free on `address` now (its own address: nobody else picks from it).
fn free_port(address: Ipv4Addr) -> u16 {
    let listener = TcpListener::bind((address, 0)).expect("bind a loopback address");
    listener.local_addr().expect("local address").port()
}

fn ssh_keygen(path: &Path, comment: &str) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .expect("ssh-keygen (openssh-client) is required: run scripts/test.sh");
    assert!(status.success(), "ssh-keygen failed for {}", path.display());
}

fn testhost_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testhost")
}

/// Fails loudly, once, when the machine cannot run test hosts.
fn preflight() {
    static CHECKED: std::sync::Once = std::sync::Once::new();
    CHECKED.call_once(|| {
        assert!(
            Path::new("/usr/sbin/sshd").is_file(),
            "/usr/sbin/sshd is missing: the test hosts need openssh-server (run scripts/test.sh)"
        );
        // SAFETY: geteuid has no preconditions.
        assert_eq!(unsafe { libc::geteuid() }, 0, "the test hosts need root (namespaces, mounts)");
    });
}

/// The OpenSSH client's command for `command` on `host` as `root` with the farm key,
/// pinning the host's current key (stdin from /dev/null).
pub fn openssh_command(hosts: &TestHosts, host: &TestHost, command: &str) -> Command {
    let known_hosts = host.dir.join("run/known_hosts");
    std::fs::write(&known_hosts, format!("[{}]:{} {}\n", host.address(), host.port(), host.host_key()))
        .expect("known_hosts");
    let mut ssh = Command::new("ssh");
    ssh.arg("-i")
        .arg(hosts.farm_key_path())
        .args(["-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=yes"])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
        .args(["-o", "ConnectTimeout=10", "-p", &host.port().to_string()])
        .arg(format!("root@{}", host.address()))
        .arg(command)
        .stdin(Stdio::null());
    ssh
}

/// Runs `command` on `host` with the OpenSSH client ([`openssh_command`]).
pub fn openssh(hosts: &TestHosts, host: &TestHost, command: &str) -> Output {
    openssh_command(hosts, host, command)
        .output()
        .expect("ssh (openssh-client) is required: run scripts/test.sh")
}
