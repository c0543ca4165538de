//! The actions a `uses:` step may name on this farm (DESIGN.md): `actions/checkout`,
//! `actions/upload-artifact`, `metalfarm/provision` and `metalfarm/reboot`, run by the
//! runner itself.

use indexmap::IndexMap;
use tokio::time::Instant;

use super::commands::{Annotation, AnnotationLevel};
use super::host::process_command;
use super::job::{ssh_failure, Conclusion, JobRun, StepError};
use super::shell::shell_quote;
use super::ssh::{DownloadError, SshError};
use crate::workflow::filters::Pattern;

/// A built-in action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuiltIn {
    Checkout,
    UploadArtifact,
    Provision,
    Reboot,
}

/// The built-in action `uses` names, if it names one this runner runs.
pub fn built_in(uses: &str) -> Option<BuiltIn> {
    let (name, version) = uses.split_once('@')?;
    match (name.to_ascii_lowercase().as_str(), version) {
        ("actions/checkout", v) if !v.is_empty() => Some(BuiltIn::Checkout),
        ("actions/upload-artifact", v) if !v.is_empty() => Some(BuiltIn::UploadArtifact),
        ("metalfarm/reboot", "v1") => Some(BuiltIn::Reboot),
        ("metalfarm/provision", "v1") => Some(BuiltIn::Provision),
        _ => None,
    }
}

/// How long `metalfarm/reboot` waits for the host by default.
const DEFAULT_REBOOT_TIMEOUT_SECS: u64 = 600;

/// `metalfarm/reboot@v1`: reboots the host and waits until SSH answers with a new boot id.
pub(super) async fn reboot(
    run: &mut JobRun<'_>,
    with: &IndexMap<String, String>,
    deadline: Instant,
) -> Result<Conclusion, StepError> {
    let timeout = timeout_input(with, std::time::Duration::from_secs(DEFAULT_REBOOT_TIMEOUT_SECS))?;
    let until = (Instant::now() + timeout).min(deadline);
    let old_boot = run.host().boot_id.clone();
    run.log(&format!("Rebooting host {} (boot id {old_boot})", run.host().target.name));
    run.flush().await;
    // Detached and a moment late, so that this command returns before the host goes.
    let command = "nohup sh -c 'sleep 1; reboot' >/dev/null 2>&1 &";
    match run.host().session().output(command).await {
        Ok(_) | Err(SshError::Lost { .. }) => {}
        Err(err) => return Err(ssh_failure(err)),
    }
    let mut host = run.host.take().expect("the host is open while steps run");
    let back = host.reconnect(until.saturating_duration_since(Instant::now()), Some(&old_boot)).await;
    run.host = Some(host);
    match back {
        Ok(()) => {
            run.log(&format!("The host is back with boot id {}", run.host().boot_id));
            Ok(Conclusion::Success)
        }
        Err(failure) => Err(StepError::Infra(failure)),
    }
}

/// The `timeout` input: a duration (`10m`) or seconds; `default` without one.
fn timeout_input(
    with: &IndexMap<String, String>,
    default: std::time::Duration,
) -> Result<std::time::Duration, StepError> {
    match with.get("timeout") {
        Some(text) => humantime::parse_duration(text.trim())
            .or_else(|_| text.trim().parse::<u64>().map(std::time::Duration::from_secs))
            .map_err(|_| StepError::Failed(format!("`timeout` must be a duration like `10m`, not `{text}`"))),
        None => Ok(default),
    }
}

/// `metalfarm/provision@v1`: reinstalls the host through the farm's provisioner with
/// the `profile` input (default: the configured one), waits until the install finished
/// and announced its new host key, and goes on on the fresh system (new key pinned, new
/// boot id, the runner's directories made again). An install that does not finish is
/// the host's fault: an infrastructure failure, and the job goes to another host.
pub(super) async fn provision(
    run: &mut JobRun<'_>,
    with: &IndexMap<String, String>,
    deadline: Instant,
) -> Result<Conclusion, StepError> {
    let Some(provisioning) = run.definition.provisioning.clone() else {
        return Err(StepError::Failed(
            "metalfarm/provision needs a farm that can reinstall this host: `[cobbler]` in the farm's config"
                .into(),
        ));
    };
    let profile = match with.get("profile").map(|p| p.trim()).filter(|p| !p.is_empty()) {
        Some(profile) => profile.to_owned(),
        None => provisioning.default_profile.clone().ok_or_else(|| {
            StepError::Failed("no `profile` input, and the farm has no `[cobbler] default_profile`".into())
        })?,
    };
    let timeout = timeout_input(with, provisioning.install_timeout)?;
    let host_name = run.host().target.name.clone();
    let old_boot = run.host().boot_id.clone();
    let target = run.host().target.clone();
    run.flush().await;

    // The install logs from its own task; its lines reach the job's log once a second.
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink = lines.clone();
    let log = move |line: String| sink.lock().expect("install log").push(line);
    let take_lines = |run: &mut JobRun<'_>| {
        for line in std::mem::take(&mut *lines.lock().expect("install log")) {
            run.log(&line);
        }
    };
    let cancel = run.cancel.clone();
    let cut_short = format!("{host_name} is mid-install: it is reinstalled again before its next job");
    let install = crate::provision::install::install(&provisioning, &host_name, &profile, timeout, &log);
    tokio::pin!(install);
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    let installed = loop {
        tokio::select! {
            result = &mut install => break result,
            _ = tick.tick() => {
                take_lines(run);
                run.flush().await;
            }
            _ = tokio::time::sleep_until(deadline) => {
                take_lines(run);
                run.host_unfit = Some(cut_short);
                return Err(StepError::Failed(format!("the job's time ran out while {host_name} was being reinstalled")));
            }
            _ = cancel.cancelled() => {
                take_lines(run);
                run.log(&format!("Cancelled while {host_name} was being reinstalled"));
                run.host_unfit = Some(cut_short);
                return Ok(Conclusion::Cancelled);
            }
        }
    };
    take_lines(run);
    let installed = installed.map_err(|e| StepError::Infra(super::host::InfraFailure::new(e.to_string())))?;
    // The old session died with the old system.
    run.host = None;
    let within = timeout.min(deadline.saturating_duration_since(Instant::now()));
    let host =
        super::host::HostSession::open_reinstalled(&target, &installed.host_key, Some(&old_boot), within)
            .await
            .map_err(StepError::Infra)?;
    run.log(&format!(
        "{host_name} is back with its new system: boot id {}, host key {} pinned",
        host.boot_id,
        super::keys::parse_public_key(&installed.host_key)
            .map(|k| super::keys::fingerprint(&k))
            .unwrap_or_default()
    ));
    let note = format!(
        "reinstalled with profile {profile} in {:.0} s ({} attempt{})",
        installed.took.as_secs_f64(),
        installed.attempts,
        if installed.attempts == 1 { "" } else { "s" }
    );
    run.host_reinstalled(&installed.host_key, note).await;
    run.host = Some(host);
    run.prepare_host().await.map_err(StepError::Infra)?;
    Ok(Conclusion::Success)
}

/// `actions/checkout`: the repository at the event's commit, into the workspace.
pub(super) async fn checkout(
    run: &mut JobRun<'_>,
    with: &IndexMap<String, String>,
    _env: &IndexMap<String, String>,
    number: i64,
    deadline: Instant,
) -> Result<Conclusion, StepError> {
    let Some(source) = run.definition.checkout.clone() else {
        return Err(StepError::Failed("actions/checkout: this job has no repository to check out".into()));
    };
    let input = |name: &str| with.get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    let url = match input("repository") {
        Some(repository) => {
            let server = run.github_str("server_url");
            format!("{}/{repository}.git", server.trim_end_matches('/'))
        }
        None => source.clone_url.clone(),
    };
    let wanted = input("ref").unwrap_or_else(|| source.sha.clone());
    let depth: u32 = match input("fetch-depth") {
        Some(text) => text.parse().map_err(|_| {
            StepError::Failed(format!("actions/checkout: `fetch-depth` must be a number, not `{text}`"))
        })?,
        None => 1,
    };
    let submodules = input("submodules").unwrap_or_else(|| "false".into()).to_ascii_lowercase();
    let dest = match input("path") {
        Some(path) => format!("{}/{path}", run.dirs.workspace),
        None => run.dirs.workspace.clone(),
    };
    let mut git = String::from("git");
    if let Some(token) = &source.token {
        use base64::Engine;
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{token}"));
        run.filter.masker.add(token);
        run.filter.masker.add(&basic);
        git.push_str(&format!(
            " -c http.extraheader={}",
            shell_quote(&format!("AUTHORIZATION: basic {basic}"))
        ));
    }
    let fetch = if depth == 0 {
        format!("{git} fetch --prune --tags origin '+refs/heads/*:refs/remotes/origin/*'")
    } else {
        format!("{git} fetch --no-tags --depth={depth} origin {}", shell_quote(&wanted))
    };
    let checkout = if depth == 0 {
        format!("git checkout --force {}", shell_quote(&wanted))
    } else {
        "git checkout --force FETCH_HEAD".into()
    };
    let mut script = format!(
        "set -e\nmkdir -p {dest}\ncd {dest}\nif [ ! -d .git ]; then git init -q .; fi\n\
         git remote remove origin 2>/dev/null || true\ngit remote add origin {url}\n\
         echo \"Fetching {shown}\"\n{fetch}\n{checkout}\ngit clean -ffdx -q\n",
        dest = shell_quote(&dest),
        url = shell_quote(&url),
        shown = wanted.replace('"', ""),
    );
    // git refuses `file://` submodules by default (CVE-2022-39253); a farm that clones
    // from local mirrors has its submodules there too, and the job runs as root anyway.
    let submodule_git = if url.starts_with("file://") || url.starts_with('/') {
        format!("{git} -c protocol.file.allow=always")
    } else {
        git.clone()
    };
    match submodules.as_str() {
        "true" => script.push_str(&format!("{submodule_git} submodule update --init --depth=1\n")),
        "recursive" => {
            script.push_str(&format!("{submodule_git} submodule update --init --recursive --depth=1\n"))
        }
        _ => {}
    }
    script.push_str("git log -1 --format='HEAD is now at %h %s'\n");
    let path = format!("{}/checkout-{number}.sh", run.dirs.temp);
    run.host().session().write_file(&path, script.as_bytes(), 0o700).await.map_err(ssh_failure)?;
    let pid_file = format!("{}/checkout-{number}.pid", run.dirs.temp);
    let command = process_command(&pid_file, &format!("sh {}", shell_quote(&path)));
    let end = run.run_streaming(&command, &pid_file, deadline).await?;
    Ok(run.conclusion_of(end, "actions/checkout"))
}

/// `actions/upload-artifact`: the files under `path` (one pattern a line, relative to
/// the workspace; `!pattern` excludes) copied into the farm's artifact store as artifact
/// `name`. As GitHub's action does, the artifact's root is the least common ancestor of
/// the search paths (a pattern's directory before its first wildcard; a file's directory).
pub(super) async fn upload_artifact(
    run: &mut JobRun<'_>,
    with: &IndexMap<String, String>,
    _number: i64,
) -> Result<Conclusion, StepError> {
    let Some(store) = run.definition.artifacts_dir.clone() else {
        return Err(StepError::Failed("actions/upload-artifact: this farm keeps no artifacts here".into()));
    };
    let name = with.get("name").map(|n| n.trim()).filter(|n| !n.is_empty()).unwrap_or("artifact").to_owned();
    // GitHub's forbidden characters, and what would leave the run's directory.
    if name.contains(['/', '\\', '"', ':', '<', '>', '|', '*', '?', '\r', '\n']) || name.starts_with('.') {
        return Err(StepError::Failed(format!("actions/upload-artifact: invalid artifact name `{name}`")));
    }
    let overwrite = with.get("overwrite").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let Some(patterns) = with.get("path").filter(|p| !p.trim().is_empty()) else {
        return Err(StepError::Failed("actions/upload-artifact: input `path` is required".into()));
    };
    let if_no_files = with.get("if-no-files-found").map(|v| v.trim().to_ascii_lowercase());
    let workspace = run.dirs.workspace.clone();
    let lines: Vec<&str> = patterns.lines().map(str::trim).filter(|p| !p.is_empty()).collect();
    let (excludes, includes): (Vec<&str>, Vec<&str>) = lines.into_iter().partition(|p| p.starts_with('!'));
    let excludes = excludes
        .iter()
        .map(|p| Pattern::parse(&format!("!{}", absolute(&workspace, &p[1..]))))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| StepError::Failed(format!("actions/upload-artifact: {e}")))?;
    // The host's shell expands the patterns; `find` lists what is under each (symbolic
    // links followed, as GitHub's action follows them), one NUL-ended record per file:
    // its pattern's index, its kind, its size and its path — names are data.
    let mut listing = format!("cd {} || exit 1\n", shell_quote(&workspace));
    let kernel_files: Vec<String> = KERNEL_FILE_SYSTEMS.iter().map(|fs| format!("-fstype {fs}")).collect();
    let kernel_files = kernel_files.join(" -o ");
    for (index, pattern) in includes.iter().enumerate() {
        // Globs are for the host's shell to expand; nothing else of the shell's is.
        if pattern.contains(['$', '`', '"', '\\', ';', '&', '|', '<', '>', '(', ')', '\'']) {
            return Err(StepError::Failed(format!(
                "actions/upload-artifact: unsupported characters in path `{pattern}`"
            )));
        }
        listing.push_str(&format!(
            "for p in {pattern}; do case $p in /*) ;; *) p=./$p ;; esac; [ -e \"$p\" ] && find -L \"$p\" \
             \\( -type f \\( {kernel_files} \\) -printf '{index}\\tk\\t0\\t%p\\0' \\) \
             -o \\( -type f -printf '{index}\\tf\\t%s\\t%p\\0' \\) -o \\( -type l -printf '{index}\\tl\\t0\\t%p\\0' \\) \
             -o \\( ! -type d -printf '{index}\\to\\t0\\t%p\\0' \\); done\n"
        ));
    }
    let out = run.host().session().output(&listing).await.map_err(ssh_failure)?;
    for line in String::from_utf8_lossy(&out.stderr).lines() {
        run.log(&format!("##[warning]{line}"));
    }
    let mut files: Vec<ListedFile> = Vec::new();
    let mut found_by: Vec<Vec<String>> = vec![Vec::new(); includes.len()];
    for record in out.stdout.split(|b| *b == 0).filter(|r| !r.is_empty()) {
        let Some(listed) = ListedFile::parse(record, &workspace)? else { continue };
        let Some(found) = found_by.get_mut(listed.pattern) else { continue };
        if excludes.iter().any(|p| p.body_matches(&listed.path)) {
            continue;
        }
        match listed.kind {
            b'f' => {}
            // Left out, as GitHub's action leaves them out.
            b'l' => {
                run.log(&format!("Skipped the broken symbolic link {}", listed.path.escape_debug()));
                continue;
            }
            b'k' => {
                return Err(StepError::Failed(format!(
                    "actions/upload-artifact: cannot upload {}: it is a file of the kernel (/proc, /sys), whose \
                     reading may never end; copy what you need into a regular file first",
                    listed.path.escape_debug()
                )))
            }
            _ => {
                return Err(StepError::Failed(format!(
                    "actions/upload-artifact: cannot upload {}: it is not a regular file (a FIFO, socket or device)",
                    listed.path.escape_debug()
                )))
            }
        }
        found.push(listed.path.clone());
        if !files.iter().any(|f| f.path == listed.path) {
            files.push(listed);
        }
    }
    if files.is_empty() {
        let message =
            format!("No files were found with the provided path: {patterns}. No artifacts will be uploaded.");
        return match if_no_files.as_deref() {
            Some("error") => Err(StepError::Failed(message)),
            Some("ignore") => {
                run.log(&message);
                Ok(Conclusion::Success)
            }
            _ => {
                run.filter.annotate(Annotation::new(AnnotationLevel::Warning, message));
                Ok(Conclusion::Success)
            }
        };
    }
    let roots: Vec<String> = includes
        .iter()
        .zip(&found_by)
        .map(|(pattern, found)| search_root(&absolute(&workspace, pattern), pattern, found))
        .collect();
    let root = common_ancestor(&roots);
    let target = store.join(&name);
    let limit = run.definition.artifact_limit;
    let size: u64 = files.iter().map(|f| f.size).sum();
    if size > limit.artifact {
        return Err(StepError::Failed(format!(
            "actions/upload-artifact: artifact `{name}` would hold {size} bytes, more than the farm's limit of \
             {} bytes per artifact (`[server] artifact_limit`)",
            limit.artifact
        )));
    }
    // What the run keeps already, but for the artifact this upload replaces.
    let kept = {
        let (store, target) = (store.clone(), target.clone());
        tokio::task::spawn_blocking(move || bytes_under(&store).saturating_sub(bytes_under(&target)))
            .await
            .unwrap_or(0)
    };
    if kept + size > limit.run {
        return Err(StepError::Failed(format!(
            "actions/upload-artifact: artifact `{name}` ({size} bytes) would bring the run's artifacts to {} bytes, \
             more than the farm's limit of {} bytes per run (`[server] artifact_limit`)",
            kept + size,
            limit.run
        )));
    }
    claim_artifact(&store, &name, &owner_of(run), overwrite, run.artifacts.contains(&name))?;
    let allowed = limit.artifact.min(limit.run - kept);
    let copied = copy_files(run, &files, &root, &target, &name, allowed).await;
    let total = match copied {
        Ok(total) => total,
        Err(err) => {
            // Half an artifact is none: nothing of it is kept.
            let _ = std::fs::remove_dir_all(&target);
            let _ = std::fs::remove_file(store.join(format!(".owner-{name}")));
            return Err(err);
        }
    };
    run.log(&format!("Artifact `{name}`: {} file(s), {total} bytes", files.len()));
    if !run.artifacts.contains(&name) {
        run.artifacts.push(name);
    }
    Ok(Conclusion::Success)
}

/// File systems whose files the kernel makes up as they are read: some never end
/// (`/proc/kmsg`, tracefs's `trace_pipe`) and would hold the host's SFTP server.
const KERNEL_FILE_SYSTEMS: &[&str] =
    &["proc", "sysfs", "debugfs", "tracefs", "securityfs", "configfs", "cgroup", "cgroup2", "pstore", "bpf"];

/// One record of the host's listing for `actions/upload-artifact`.
struct ListedFile {
    /// The index of the pattern that found it.
    pattern: usize,
    /// `f` a file (or a symbolic link to one), `k` a file of a kernel file system, `l` a
    /// broken symbolic link, `o` anything else but a folder.
    kind: u8,
    size: u64,
    /// Absolute.
    path: String,
}

impl ListedFile {
    /// `INDEX \t KIND \t SIZE \t PATH`; a path that is not UTF-8 is a step error naming
    /// it (SFTP paths are text), a malformed record none.
    fn parse(record: &[u8], workspace: &str) -> Result<Option<ListedFile>, StepError> {
        let mut fields = record.splitn(4, |b| *b == b'\t');
        let (Some(index), Some(kind), Some(size), Some(path)) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Ok(None);
        };
        let number = |field: &[u8]| std::str::from_utf8(field).ok().and_then(|t| t.parse::<u64>().ok());
        let (Some(index), [kind], Some(size)) = (number(index), kind, number(size)) else { return Ok(None) };
        let Ok(path) = std::str::from_utf8(path) else {
            let shown = match path.strip_prefix(b"./") {
                Some(relative) => format!("{workspace}/{}", shown_bytes(relative)),
                None => shown_bytes(path),
            };
            return Err(StepError::Failed(format!(
                "actions/upload-artifact: cannot upload {shown}: its name is not UTF-8"
            )));
        };
        Ok(Some(ListedFile { pattern: index as usize, kind: *kind, size, path: absolute(workspace, path) }))
    }
}

/// A name as bytes, readable: valid UTF-8 as text (control characters escaped), the
/// rest as `\xNN`.
fn shown_bytes(bytes: &[u8]) -> String {
    let mut shown = String::new();
    for chunk in bytes.utf8_chunks() {
        shown.extend(chunk.valid().escape_debug());
        for byte in chunk.invalid() {
            shown.push_str(&format!("\\x{byte:02x}"));
        }
    }
    shown
}

/// Copies `files` into the artifact folder `target`, by their path below `root`, at
/// most `allowed` bytes in all. A file that cannot be read is the step's error, a
/// file that cannot be written the farm's.
async fn copy_files(
    run: &JobRun<'_>,
    files: &[ListedFile],
    root: &str,
    target: &std::path::Path,
    name: &str,
    allowed: u64,
) -> Result<u64, StepError> {
    let mut total = 0u64;
    for file in files {
        let relative = file.path.strip_prefix(root).unwrap_or(&file.path).trim_start_matches('/');
        let local = target.join(relative);
        if let Some(parent) = local.parent() {
            std::fs::create_dir_all(parent).map_err(|e| farm_cannot_store(name, &e))?;
        }
        let shown = file.path.escape_debug();
        total += match run.host().session().download(&file.path, &local, allowed - total).await {
            Ok(bytes) => bytes,
            Err(DownloadError::Remote(err)) if err.is_infrastructure() => return Err(ssh_failure(err)),
            Err(DownloadError::Remote(err)) => {
                return Err(StepError::Failed(format!("actions/upload-artifact: cannot read {shown}: {err}")))
            }
            Err(DownloadError::Local { source, .. }) => return Err(farm_cannot_store(name, &source)),
            Err(DownloadError::TooLarge { .. }) => {
                return Err(StepError::Failed(format!(
                "actions/upload-artifact: {shown} grew while it was uploaded: artifact `{name}` would pass \
                     the farm's limit (`[server] artifact_limit`)"
            )))
            }
        };
    }
    Ok(total)
}

/// The farm's own disk refused an artifact.
fn farm_cannot_store(name: &str, err: &std::io::Error) -> StepError {
    StepError::Farm(format!(
        "The farm could not store artifact `{name}`: {err}. This is the farm's failure, not the job's or the host's."
    ))
}

/// The bytes of the files under `path` (none when it does not exist).
fn bytes_under(path: &std::path::Path) -> u64 {
    let Ok(metadata) = std::fs::symlink_metadata(path) else { return 0 };
    if !metadata.is_dir() {
        return metadata.len();
    }
    let Ok(entries) = std::fs::read_dir(path) else { return 0 };
    entries.flatten().map(|entry| bytes_under(&entry.path())).sum()
}

/// Which job of the run uploads: its id and matrix combination, the same when the farm
/// runs the job again after a host failure.
fn owner_of(run: &JobRun<'_>) -> String {
    let matrix = run.definition.contexts.get("matrix").map(|m| m.to_json_string()).unwrap_or_default();
    format!("{} {matrix}", run.definition.job_key)
}

/// Makes `name` this job's artifact, as GitHub's v4 action does: a name another job of
/// the run (or an earlier step of this one) used is refused unless `overwrite`; the
/// same job's upload from an attempt cut short by its host is replaced. The owner is
/// kept in `.owner-<name>` beside the artifacts (names may not start with `.`).
fn claim_artifact(
    store: &std::path::Path,
    name: &str,
    owner: &str,
    overwrite: bool,
    uploaded_by_this_run: bool,
) -> Result<(), StepError> {
    let fail = |e: std::io::Error| farm_cannot_store(name, &e);
    let target = store.join(name);
    let owner_file = store.join(format!(".owner-{name}"));
    if target.exists() {
        let previous = std::fs::read_to_string(&owner_file).unwrap_or_default();
        if !overwrite && (uploaded_by_this_run || previous != owner) {
            return Err(StepError::Failed(format!(
                "actions/upload-artifact: an artifact named `{name}` already exists on this workflow run \
                 (give each job's artifact its own name, or set `overwrite: true`)"
            )));
        }
        std::fs::remove_dir_all(&target).map_err(fail)?;
    }
    std::fs::create_dir_all(store).map_err(fail)?;
    std::fs::write(&owner_file, owner).map_err(fail)
}

/// `path` made absolute under `base`, with `.` and `..` resolved and no trailing `/`.
fn absolute(base: &str, path: &str) -> String {
    let joined = if path.starts_with('/') { path.to_owned() } else { format!("{base}/{path}") };
    let mut parts: Vec<&str> = Vec::new();
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Where a pattern's search starts: the directory before its first wildcard; for a
/// plain path, the path itself when a directory, its directory when a file.
fn search_root(pattern: &str, written: &str, found: &[String]) -> String {
    let has_glob = |part: &str| part.contains(['*', '?', '[']);
    if written.split('/').any(has_glob) {
        let parts: Vec<&str> = pattern.split('/').take_while(|p| !has_glob(p)).collect();
        return parts.join("/");
    }
    if found.len() == 1 && found[0] == pattern {
        return pattern.rsplit_once('/').map_or("/".to_owned(), |(dir, _)| dir.to_owned());
    }
    pattern.to_owned()
}

/// The longest common directory of absolute paths.
fn common_ancestor(paths: &[String]) -> String {
    let mut common: Option<Vec<&str>> = None;
    for path in paths {
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        common = Some(match common {
            None => parts,
            Some(prefix) => prefix.iter().zip(&parts).take_while(|(a, b)| a == b).map(|(a, _)| *a).collect(),
        });
    }
    format!("/{}", common.unwrap_or_default().join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_roots_as_github_chooses_them() {
        let ws = "/w/ws";
        assert_eq!(absolute(ws, "./out/../out/a.txt"), "/w/ws/out/a.txt");
        assert_eq!(absolute(ws, "/abs/dir/"), "/abs/dir");
        assert_eq!(search_root("/w/ws/out/*.txt", "out/*.txt", &[]), "/w/ws/out");
        assert_eq!(search_root("/w/ws/out/**/x/*.log", "out/**/x/*.log", &[]), "/w/ws/out");
        let file = vec!["/w/ws/build/r.html".to_owned()];
        assert_eq!(search_root("/w/ws/build/r.html", "build/r.html", &file), "/w/ws/build");
        assert_eq!(
            search_root("/w/ws/out/logs", "out/logs/", &["/w/ws/out/logs/a".into()]),
            "/w/ws/out/logs"
        );
        assert_eq!(common_ancestor(&["/w/ws/out".into(), "/w/ws/out/logs".into()]), "/w/ws/out");
        assert_eq!(common_ancestor(&["/w/ws/a".into(), "/w/ws/b/c".into()]), "/w/ws");
        assert_eq!(common_ancestor(&["/a".into(), "/b".into()]), "/");
    }
}
