//! `hashFiles(patterns…)` over a workspace directory, as GitHub's runner computes it:
//! the files under the workspace that the patterns match (glob syntax of
//! `@actions/glob`: `*`, `?`, `[…]`, `**`, a pattern matching a directory matches
//! everything below it, `!` excludes, the last matching pattern decides), in the order
//! its walk yields them (from each pattern's literal leading directory in pattern
//! order, depth first, each directory's entries sorted by name), each
//! hashed with SHA-256; the result is the hex SHA-256 of those digests one after the
//! other, or the empty string when nothing matches. Symbolic links to files are
//! hashed (their target's content); links to directories are followed only when the
//! first argument is `--follow-symbolic-links`, as on GitHub.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::workflow::expr::FileHasher;

/// `hashFiles` over the files below `root`.
#[derive(Debug, Clone)]
pub struct WorkspaceHasher {
    pub root: PathBuf,
}

impl WorkspaceHasher {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        WorkspaceHasher { root: root.into() }
    }
}

impl FileHasher for WorkspaceHasher {
    fn hash_files(&self, patterns: &[String]) -> Result<String, String> {
        hash_files(&self.root, patterns).map_err(|e| match e.kind() {
            io::ErrorKind::InvalidInput => e.to_string(),
            _ => format!("hashing files under {}: {e}", self.root.display()),
        })
    }
}

/// The segments of a pattern that reaches outside the workspace (matches nothing).
const OUTSIDE: &str = "\0outside";

/// One pattern, as path segments relative to the workspace root.
struct Pattern {
    negate: bool,
    segments: Vec<String>,
}

/// Parses the patterns: one per line, trimmed; empty lines and `#` comments skipped;
/// each leading `!` flips inclusion; relative patterns are rooted at the workspace.
/// Patterns outside the workspace (absolute elsewhere, `~`) are kept but match
/// nothing; `..` anywhere or `.` after the first segment is an error, as on GitHub.
fn parse_patterns(root: &Path, patterns: &[String]) -> Result<Vec<Pattern>, String> {
    let mut out = Vec::new();
    for line in patterns.iter().flat_map(|p| p.lines()) {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut p = line;
        let mut negate = false;
        while let Some(rest) = p.strip_prefix('!') {
            negate = !negate;
            p = rest;
        }
        let raw: Vec<&str> = p.split('/').filter(|s| !s.is_empty()).collect();
        if raw.iter().enumerate().any(|(i, s)| *s == ".." || (*s == "." && i > 0)) {
            return Err(format!("Invalid pattern '{p}'. Relative pathing '.' and '..' is not allowed."));
        }
        let rel = if Path::new(p).is_absolute() {
            Path::new(p).strip_prefix(root).ok().map(|r| r.to_string_lossy().into_owned())
        } else if p == "~" || p.starts_with("~/") {
            None
        } else {
            Some(p.to_string())
        };
        let segments = match rel {
            Some(rel) => rel.split('/').filter(|s| !s.is_empty() && *s != ".").map(String::from).collect(),
            None => vec![OUTSIDE.to_string()],
        };
        out.push(Pattern { negate, segments });
    }
    Ok(out)
}

/// Whether glob `pat` matches the whole of one path segment `name`.
fn segment_matches(pat: &[char], name: &[char]) -> bool {
    match pat.first() {
        None => name.is_empty(),
        Some('*') => (0..=name.len()).any(|i| segment_matches(&pat[1..], &name[i..])),
        Some('?') => !name.is_empty() && segment_matches(&pat[1..], &name[1..]),
        Some('[') => match parse_class(&pat[1..]) {
            Some((len, matcher)) => {
                !name.is_empty() && matcher(name[0]) && segment_matches(&pat[1 + len..], &name[1..])
            }
            None => name.first() == Some(&'[') && segment_matches(&pat[1..], &name[1..]),
        },
        Some('\\') if pat.len() > 1 => {
            name.first() == Some(&pat[1]) && segment_matches(&pat[2..], &name[1..])
        }
        Some(c) => name.first() == Some(c) && segment_matches(&pat[1..], &name[1..]),
    }
}

type ClassMatcher = Box<dyn Fn(char) -> bool>;

/// A `[...]` class after its `[`: its length up to and including `]`, and a matcher.
fn parse_class(p: &[char]) -> Option<(usize, ClassMatcher)> {
    let mut i = 0;
    let negate = matches!(p.first(), Some('!' | '^'));
    if negate {
        i += 1;
    }
    let mut ranges: Vec<(char, char)> = Vec::new();
    let mut first = true;
    while i < p.len() {
        let c = p[i];
        if c == ']' && !first {
            let len = i + 1;
            return Some((
                len,
                Box::new(move |ch| ranges.iter().any(|(a, b)| *a <= ch && ch <= *b) != negate),
            ));
        }
        first = false;
        if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
            ranges.push((c, p[i + 2]));
            i += 3;
        } else {
            ranges.push((c, c));
            i += 1;
        }
    }
    None
}

/// Whether the pattern matches the path `rel` (segments below the root) exactly.
fn path_matches(pat: &[Vec<char>], rel: &[Vec<char>]) -> bool {
    match pat.first() {
        None => rel.is_empty(),
        Some(p) if p.len() == 2 && p[0] == '*' && p[1] == '*' => {
            (0..=rel.len()).any(|i| path_matches(&pat[1..], &rel[i..]))
        }
        Some(p) => !rel.is_empty() && segment_matches(p, &rel[0]) && path_matches(&pat[1..], &rel[1..]),
    }
}

/// Whether `rel` is selected: the last pattern matching it or one of its ancestor
/// directories decides, as `@actions/glob` (implicit descendants) does.
fn selected(patterns: &[(bool, Vec<Vec<char>>)], rel: &[Vec<char>]) -> bool {
    let mut included = false;
    for (negate, pat) in patterns {
        let hit = (1..=rel.len()).any(|n| path_matches(pat, &rel[..n]));
        if hit {
            included = !negate;
        }
    }
    included
}

/// A first argument that makes the walk follow links to directories.
pub const FOLLOW_SYMLINKS: &str = "--follow-symbolic-links";

/// The hash of the files below `root` that `patterns` select; empty when none.
pub fn hash_files(root: &Path, patterns: &[String]) -> io::Result<String> {
    let (follow, patterns) = match patterns.split_first() {
        Some((first, rest)) if first == FOLLOW_SYMLINKS => (true, rest),
        _ => (false, patterns),
    };
    let parsed =
        parse_patterns(root, patterns).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let compiled: Vec<(bool, Vec<Vec<char>>)> =
        parsed.iter().map(|p| (p.negate, p.segments.iter().map(|s| s.chars().collect()).collect())).collect();
    let mut files = Vec::new();
    for search in search_paths(&parsed) {
        let path = search.iter().fold(root.to_path_buf(), |p, s| p.join(s));
        if fs::symlink_metadata(&path).is_err() {
            continue;
        }
        let mut rel: Vec<Vec<char>> = search.iter().map(|s| s.chars().collect()).collect();
        visit(&path, &mut rel, &compiled, follow, &mut files, &mut Vec::new())?;
    }
    if files.is_empty() {
        return Ok(String::new());
    }
    let mut all = Sha256::new();
    for file in &files {
        all.update(sha256_file(file)?);
    }
    Ok(hex(&all.finalize()))
}

fn is_glob(segment: &str) -> bool {
    segment.contains(['*', '?', '['])
}

/// Where the walk starts, as GitHub's glob computes it: for each including pattern, its
/// literal leading segments; in pattern order, without one below another.
fn search_paths(patterns: &[Pattern]) -> Vec<Vec<String>> {
    let candidates: Vec<Vec<String>> = patterns
        .iter()
        .filter(|p| !p.negate && p.segments.first().map(String::as_str) != Some(OUTSIDE))
        .map(|p| p.segments.iter().take_while(|s| !is_glob(s)).cloned().collect())
        .collect();
    let mut out: Vec<Vec<String>> = Vec::new();
    for c in &candidates {
        let has_ancestor = (0..c.len()).any(|n| candidates.iter().any(|other| other.as_slice() == &c[..n]));
        if !has_ancestor && !out.contains(c) {
            out.push(c.clone());
        }
    }
    out
}

/// Depth-first from `path`, each directory's entries in byte order of their names (the
/// order GitHub's glob walk yields). `chain` holds the real paths of the directories
/// being walked, to stop at a link cycle.
fn visit(
    path: &Path,
    rel: &mut Vec<Vec<char>>,
    patterns: &[(bool, Vec<Vec<char>>)],
    follow: bool,
    files: &mut Vec<PathBuf>,
    chain: &mut Vec<PathBuf>,
) -> io::Result<()> {
    let link = fs::symlink_metadata(path)?;
    // A dangling link has nothing to hash: skipped.
    let Ok(meta) = fs::metadata(path) else { return Ok(()) };
    if !meta.is_dir() {
        if selected(patterns, rel) {
            files.push(path.to_path_buf());
        }
        return Ok(());
    }
    if link.file_type().is_symlink() && !follow {
        // Not followed: GitHub's walk reports it as an entry, which hashFiles then
        // skips as a directory.
        return Ok(());
    }
    let real = fs::canonicalize(path)?;
    if chain.contains(&real) {
        return Ok(());
    }
    chain.push(real);
    let mut entries: Vec<(String, PathBuf)> = fs::read_dir(path)?
        .map(|e| e.map(|e| (e.file_name().to_string_lossy().into_owned(), e.path())))
        .collect::<io::Result<_>>()?;
    entries.sort();
    for (name, child) in entries {
        rel.push(name.chars().collect());
        visit(&child, rel, patterns, follow, files, chain)?;
        rel.pop();
    }
    chain.pop();
    Ok(())
}

fn sha256_file(path: &Path) -> io::Result<impl AsRef<[u8]>> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(data: &[u8]) -> Vec<u8> {
        Sha256::digest(data).to_vec()
    }

    fn expected(contents: &[&[u8]]) -> String {
        let mut all = Sha256::new();
        for c in contents {
            all.update(sha(c));
        }
        hex(&all.finalize())
    }

    fn workspace() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        let w = |rel: &str, data: &str| {
            let p = dir.path().join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, data).unwrap();
        };
        w("Cargo.lock", "lock");
        w("a/package-lock.json", "a-lock");
        w("a/b/package-lock.json", "ab-lock");
        w("a-c/package-lock.json", "ac-lock");
        w("src/main.rs", "main");
        w("src/.hidden", "hidden");
        dir
    }

    fn run(dir: &tempfile::TempDir, patterns: &[&str]) -> String {
        let patterns: Vec<String> = patterns.iter().map(|s| s.to_string()).collect();
        WorkspaceHasher::new(dir.path()).hash_files(&patterns).unwrap()
    }

    #[test]
    fn one_file() {
        let dir = workspace();
        assert_eq!(run(&dir, &["Cargo.lock"]), expected(&[b"lock"]));
        assert_eq!(run(&dir, &["./Cargo.lock"]), expected(&[b"lock"]));
    }

    #[test]
    fn globstar_in_walk_order() {
        let dir = workspace();
        // "a" sorts before "a-c", so a/… comes first although "a-c/" < "a/" as strings.
        assert_eq!(run(&dir, &["**/package-lock.json"]), expected(&[b"ab-lock", b"a-lock", b"ac-lock"]));
    }

    #[test]
    fn the_walk_starts_where_each_pattern_starts() {
        let dir = workspace();
        assert_eq!(run(&dir, &["a-c/**", "a/**"]), expected(&[b"ac-lock", b"ab-lock", b"a-lock"]));
        assert_eq!(run(&dir, &["a/**", "a-c/**"]), expected(&[b"ab-lock", b"a-lock", b"ac-lock"]));
        // A later pattern below an earlier one's start adds no second walk.
        assert_eq!(run(&dir, &["a/**", "a/b/**"]), expected(&[b"ab-lock", b"a-lock"]));
    }

    #[test]
    fn negation_and_order_of_patterns() {
        let dir = workspace();
        assert_eq!(run(&dir, &["**/package-lock.json", "!a/**"]), expected(&[b"ac-lock"]));
        assert_eq!(
            run(&dir, &["**/package-lock.json", "!a/**", "a/b/*.json"]),
            expected(&[b"ab-lock", b"ac-lock"])
        );
    }

    #[test]
    fn a_directory_matches_everything_below_it_including_dotfiles() {
        let dir = workspace();
        assert_eq!(run(&dir, &["src"]), expected(&[b"hidden", b"main"]));
        assert_eq!(run(&dir, &["src/*"]), expected(&[b"hidden", b"main"]));
        assert_eq!(run(&dir, &["src/m?in.[rx]s"]), expected(&[b"main"]));
    }

    #[test]
    fn nothing_matches_is_empty() {
        let dir = workspace();
        assert_eq!(run(&dir, &["nope/**"]), "");
        assert_eq!(run(&dir, &["~/**"]), "");
        let bad = WorkspaceHasher::new(dir.path()).hash_files(&["a/../b".to_string()]).unwrap_err();
        assert_eq!(bad, "Invalid pattern 'a/../b'. Relative pathing '.' and '..' is not allowed.");
        assert_eq!(run(&dir, &["# comment"]), "");
    }

    #[test]
    fn links_to_directories_are_followed_only_when_asked() {
        let dir = workspace();
        std::os::unix::fs::symlink(dir.path().join("src"), dir.path().join("linked")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("Cargo.lock"), dir.path().join("lock-link")).unwrap();
        assert_eq!(run(&dir, &["linked/**"]), "");
        assert_eq!(run(&dir, &[FOLLOW_SYMLINKS, "linked/**"]), expected(&[b"hidden", b"main"]));
        assert_eq!(run(&dir, &["lock-link"]), expected(&[b"lock"]));
    }

    #[test]
    fn absolute_patterns_inside_the_workspace() {
        let dir = workspace();
        let abs = format!("{}/Cargo.lock", dir.path().display());
        assert_eq!(run(&dir, &[&abs]), expected(&[b"lock"]));
    }
}
