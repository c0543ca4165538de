//! `metalfarm serve`: the controller. With no `--config` it starts on the embedded
//! defaults (SQLite under `./metalfarm-data/`, 127.0.0.1:8080, workflows from `./workflows/`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;

use crate::config::Config;
use crate::farm::Farm;
use crate::forge::app::GithubApp;
use crate::store::Store;
use crate::web::api::AdminToken;
use crate::web::{router, AppState};

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The TOML config file (default: built-in defaults).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// How the log on stderr is written: text (in colour on a terminal) or JSON lines.
    #[arg(long, value_enum, default_value_t = super::LogFormat::Text)]
    pub log_format: super::LogFormat,
}

pub fn run(args: ServeArgs) -> ExitCode {
    let config = match &args.config {
        Some(path) => Config::from_file(path),
        None => Ok(Config::embedded(&std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")))),
    };
    let config = match config {
        Ok(config) => config,
        Err(err) => {
            eprintln!("metalfarm serve: {err}");
            return ExitCode::from(super::EXIT_USAGE);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("metalfarm serve: cannot start the async runtime: {err}");
            return ExitCode::from(super::EXIT_USAGE);
        }
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("metalfarm serve: {err:#}");
            ExitCode::from(super::EXIT_USAGE)
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    make_files_private(&config.server.data_dir)?;
    ensure_admin_token(&config.server.admin_token_file)?;
    refuse_open_file("server.admin_token_file", &config.server.admin_token_file)?;
    let admin_token = AdminToken::new(&read_secret(&config.server.admin_token_file)?);
    if admin_token.is_none() {
        tracing::warn!("server.admin_token_file is empty: changes through the API will be refused");
    }
    let webhook_secret = match &config.forge.webhook_secret_file {
        Some(path) => Some(Arc::<[u8]>::from(read_secret(path)?.into_bytes())),
        None => {
            tracing::warn!("no forge.webhook_secret_file: webhook deliveries will be refused");
            None
        }
    };
    let store = Store::open(&config.database_url()).await.context("cannot open the database")?;
    let listen = config.server.listen;
    let forge = github_app(&config)?.map(Arc::new);
    if forge.is_none() {
        tracing::warn!("no forge.app_id: check runs stay in the outbox until an App is configured");
    }
    let provisioner = match &config.cobbler {
        Some(cobbler) => {
            let client = crate::provision::cobbler::CobblerClient::from_config(cobbler)
                .with_context(|| format!("[cobbler] url = {}", cobbler.url))?;
            Some(Arc::new(client) as Arc<dyn crate::provision::Provisioner>)
        }
        None => {
            tracing::warn!("no [cobbler]: hosts are not reinstalled (metalfarm/provision fails, repairing hosts wait for an admin)");
            None
        }
    };
    let mut farm = Farm::new(config, store.clone(), forge.clone());
    if let Some(provisioner) = provisioner {
        farm = farm.with_provisioner(provisioner);
    }
    let farm = Arc::new(farm);
    let hosts = farm.inventory.sync_config(&farm.config.hosts).await.context("in the config file")?;
    tracing::info!(hosts = hosts.len(), "inventory loaded");
    for host in &hosts {
        crate::farm::runner::learn_host_key(farm.clone(), host.name.clone());
    }
    // Each host's system in Cobbler, checked in the background: a missing one is logged loudly.
    let checked = farm.clone();
    tokio::spawn(async move {
        for host in &hosts {
            crate::farm::repair::check_provisioning(&checked, host).await;
        }
    });
    let repairer = tokio::spawn(crate::farm::repair::run_forever(farm.clone()));
    let dispatcher = tokio::spawn(crate::farm::dispatch::run_forever(farm.clone()));
    let processor = tokio::spawn(crate::farm::deliveries::process_forever(farm.clone()));
    let reporter = forge.map(|app| tokio::spawn(crate::farm::reporter::report_forever(farm.clone(), app)));
    let cron = tokio::spawn(crate::farm::cron::run_forever(farm.clone()));

    let stopping = crate::web::Stopping::default();
    let app = router(AppState {
        store: store.clone(),
        webhook_secret,
        deliveries_waiting: farm.deliveries_waiting.clone(),
        inventory: farm.inventory.clone(),
        admin_token,
        farm: farm.clone(),
        stopping: stopping.clone(),
        allowed_hosts: Arc::new(crate::web::guards::AllowedHosts::from_config(&farm.config)),
        webhook_memory: Arc::new(tokio::sync::Semaphore::new(
            usize::try_from(farm.config.server.webhook_memory)
                .unwrap_or(usize::MAX)
                .min(tokio::sync::Semaphore::MAX_PERMITS),
        )),
    });
    let listener =
        tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    farm.set_listen_addr(listener.local_addr()?);
    tracing::info!(listen = %listener.local_addr()?, "metalfarm is serving");
    // Scripts and tests read the address from here (the port may be 0 in the config).
    eprintln!("metalfarm: listening on http://{}", listener.local_addr()?);
    tracing::info!(read_access = ?farm.config.server.read_access(), "reads of the API and /metrics");
    let limits = crate::web::server::ConnectionLimits {
        header_timeout: farm.config.server.header_timeout,
        max_connections: farm.config.server.max_connections,
    };
    crate::web::server::serve(listener, app, limits, async move {
        shutdown_signal().await;
        stopping.stop();
    })
    .await;
    processor.abort();
    repairer.abort();
    cron.abort();
    dispatcher.abort();
    if let Some(reporter) = reporter {
        reporter.abort();
    }
    store.close().await;
    Ok(())
}

/// The GitHub App the farm reports as, when `forge.app_id` is set.
fn github_app(config: &Config) -> anyhow::Result<Option<GithubApp>> {
    let (Some(app_id), Some(key_file)) = (config.forge.app_id, &config.forge.private_key_file) else {
        return Ok(None);
    };
    let key = std::fs::read(key_file).with_context(|| format!("cannot read {}", key_file.display()))?;
    let app = GithubApp::new(&config.forge.api_url, app_id, &key)
        .with_context(|| format!("forge.private_key_file {}", key_file.display()))?
        .with_request_timeout(config.forge.request_timeout);
    Ok(Some(app))
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(_) => return interrupt.await.unwrap_or(()),
        };
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    interrupt.await.unwrap_or(());
}

/// A secret file's content without the trailing newline editors add.
fn read_secret(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(text.trim_end_matches(['\r', '\n']).to_owned())
}

/// Everything the farm writes — database, job logs, artifacts, its SSH key, the admin
/// token — is readable by the farm's user alone, whatever umask it was started with:
/// files 0600 and folders 0700, the data folder too when it was made before.
fn make_files_private(data_dir: &Path) -> anyhow::Result<()> {
    // SAFETY: umask(2) only sets this process's file creation mask and cannot fail.
    unsafe { libc::umask(0o077) };
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create the data folder {}", data_dir.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot make the data folder {} private", data_dir.display()))
}

/// A secret file that other users can read (or write) is refused, as ssh refuses an
/// unprotected key: whoever reads it could do what it allows.
fn refuse_open_file(key: &str, path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        anyhow::bail!(
            "{key} {} is open to other users (mode {:04o}): make it private with `chmod 600 {}`",
            path.display(),
            mode & 0o7777,
            path.display()
        );
    }
    Ok(())
}

/// The admin token is created on first start (random, 0600) so the API is never open.
fn ensure_admin_token(path: &Path) -> anyhow::Result<()> {
    if path.exists() {
        return Ok(());
    }
    let mut bytes = [0u8; 32];
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("cannot read random bytes for the admin token")?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    use std::io::Write;
    options
        .open(path)
        .and_then(|mut f| writeln!(f, "{token}"))
        .with_context(|| format!("cannot write the admin token to {}", path.display()))?;
    tracing::info!(path = %path.display(), "created the admin token");
    Ok(())
}
