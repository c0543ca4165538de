//! Every branch, tag and path filter pattern written in the real-world workflows of
//! `../shared/corpus/realworld/` (and actionlint's accepted workflows) compiles as a
//! GitHub filter pattern.

mod common;

use metalfarm::workflow::filters::Pattern;
use metalfarm::workflow::load::{load, LoadOptions};

#[test]
fn every_corpus_filter_pattern_compiles() {
    let corpus = common::corpus_dir();
    let mut files = common::files_with_ext(&corpus.join("realworld"), &[".yml", ".yaml"]);
    files.extend(common::files_with_ext(&corpus.join("actionlint/ok"), &[".yml", ".yaml"]));
    let (mut patterns, mut bad) = (0, Vec::new());
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read corpus file");
        let Some(workflow) = load(&text, &LoadOptions { syntax_only: true }).workflow else { continue };
        for (event, config) in &workflow.on.events {
            let lists = [
                &config.branches,
                &config.branches_ignore,
                &config.tags,
                &config.tags_ignore,
                &config.paths,
                &config.paths_ignore,
            ];
            for pattern in lists.into_iter().flatten().flatten() {
                patterns += 1;
                if let Err(e) = Pattern::parse(&pattern.value) {
                    bad.push(format!("{}:{} [{event}]: {e}", file.display(), pattern.pos));
                }
            }
        }
    }
    assert!(bad.is_empty(), "{} patterns do not compile:\n{}", bad.len(), bad.join("\n"));
    assert!(patterns > 1000, "only {patterns} patterns found");
}
