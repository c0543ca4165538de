//! The workflow files a command works on, read from disk, and the parallel loop over
//! them: shared by `check` and `plan` (the library itself takes text, never paths).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

/// Where workflows live when no path is given.
pub const DEFAULT_DIRS: [&str; 2] = ["workflows", ".github/workflows"];

/// Each file given, and the `*.yml`/`*.yaml` files of each directory (sorted); with no
/// paths, those of [`DEFAULT_DIRS`].
pub fn workflow_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let given: Vec<PathBuf> = if paths.is_empty() {
        let dirs: Vec<PathBuf> = DEFAULT_DIRS.iter().map(PathBuf::from).filter(|d| d.is_dir()).collect();
        if dirs.is_empty() {
            bail!(
                "no workflow directory here (looked for {}); give files or directories",
                DEFAULT_DIRS.join(" and ")
            );
        }
        dirs
    } else {
        paths.to_vec()
    };
    let mut files = Vec::new();
    for path in given {
        let meta = std::fs::metadata(&path).with_context(|| format!("{}", path.display()))?;
        if meta.is_dir() {
            files.extend(dir_workflows(&path)?);
        } else {
            files.push(path);
        }
    }
    Ok(files)
}

fn dir_workflows(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading directory {}", dir.display()))? {
        let path = entry.with_context(|| format!("reading directory {}", dir.display()))?.path();
        if path.is_file() && path.extension().is_some_and(|e| e == "yml" || e == "yaml") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// The text of every file; a file that is not UTF-8 is an error naming it.
pub fn read_texts(files: &[PathBuf]) -> anyhow::Result<Vec<String>> {
    files
        .iter()
        .map(|f| {
            let bytes = std::fs::read(f).with_context(|| format!("reading {}", f.display()))?;
            String::from_utf8(bytes).with_context(|| format!("{} is not UTF-8 text", f.display()))
        })
        .collect()
}

/// `f(0..n)` on as many threads as there are cores (each item is independent), results
/// in order.
pub fn parallel_map<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get()).min(n.max(1));
    if threads <= 1 || n < 8 {
        return (0..n).map(f).collect();
    }
    let chunk = n.div_ceil(threads);
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let range = (t * chunk).min(n)..((t + 1) * chunk).min(n);
                scope.spawn(move || range.map(f).collect::<Vec<_>>())
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("a worker thread panicked")).collect()
    })
}
