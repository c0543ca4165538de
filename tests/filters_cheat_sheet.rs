//! Every example of the "Filter pattern cheat sheet" in GitHub's "Workflow syntax for
//! GitHub Actions", plus the branch/tag/path examples of the `on.push` and
//! `on.pull_request` sections, as (patterns, name, expected) rows. Where the docs only
//! describe what a pattern excludes, the excluded names are asserted as non-matches.

use metalfarm::workflow::filters::Filter;

fn check(patterns: &[&str], matching: &[&str], not_matching: &[&str]) {
    let filter = Filter::new(patterns).unwrap_or_else(|e| panic!("{patterns:?}: {e}"));
    for name in matching {
        assert!(filter.matches(name), "{patterns:?} should match {name:?}");
    }
    for name in not_matching {
        assert!(!filter.matches(name), "{patterns:?} should not match {name:?}");
    }
}

#[test]
fn special_characters() {
    // `*`: "For example, `Octo*` matches `Octocat`."
    check(&["Octo*"], &["Octocat", "Octo"], &["Octo/cat", "octocat"]);
    // `**`: zero or more of any character.
    check(&["Octo**"], &["Octocat", "Octo/cat/x"], &["Oct"]);
    // `?`: zero or one of the preceding character.
    check(&["Octoc?at"], &["Octoat", "Octocat"], &["Octoccat"]);
    // `+`: one or more of the preceding character.
    check(&["Octoc+at"], &["Octocat", "Octocccat"], &["Octoat"]);
    // `[]`: "`[CB]at` matches `Cat` or `Bat` and `[1-2]00` matches `100` and `200`",
    // "the range `[0-9a-z]` matches any digit or lowercase letter".
    check(&["[CB]at"], &["Cat", "Bat"], &["Hat", "cat", "CBat"]);
    check(&["[1-2]00"], &["100", "200"], &["300", "000"]);
    check(&["[0-9a-z]"], &["0", "9", "a", "z"], &["A", "-", "aa"]);
    // `!`: "At the start of a pattern makes it negate previous positive patterns. It has
    // no special meaning if not the first character."
    check(&["**", "!main"], &["dev"], &["main"]);
    check(&["a!b"], &["a!b"], &["ab"]);
    // The quoting example: `branches: [ main, 'release/v[0-9].[0-9]' ]`.
    check(&["main", "release/v[0-9].[0-9]"], &["main", "release/v1.2"], &["release/v10.2", "release/v1.x"]);
    // "**/README.md" from the quoting example.
    check(&["**/README.md"], &["README.md", "a/b/README.md"], &["a/README.txt"]);
}

#[test]
fn patterns_to_match_branches_and_tags() {
    check(
        &["feature/*"],
        &["feature/my-branch", "feature/your-branch"],
        &["feature/beta-a/my-branch", "feature"],
    );
    check(
        &["feature/**"],
        &["feature/beta-a/my-branch", "feature/your-branch", "feature/mona/the/octocat"],
        &["features/x", "other/feature/x"],
    );
    check(&["main"], &["main"], &["main2", "xmain", "Main"]);
    check(&["releases/mona-the-octocat"], &["releases/mona-the-octocat"], &["releases/mona"]);
    check(&["*"], &["main", "releases"], &["releases/v1", "all/the/branches"]);
    check(&["**"], &["all/the/branches", "every/tag", "main"], &[]);
    check(&["*feature"], &["mona-feature", "feature", "ver-10-feature"], &["feature-x", "a/feature"]);
    check(&["v2*"], &["v2", "v2.0", "v2.9"], &["v1", "v3.2", "v2/x"]);
    check(
        &["v[12].[0-9]+.[0-9]+"],
        &["v1.10.1", "v2.0.0"],
        &["v3.0.0", "v1.10", "v1x10x1", "v1.a.1", "v12.0.0"],
    );
}

#[test]
fn patterns_to_match_file_paths() {
    check(&["*"], &["README.md", "server.rb"], &["docs/README.md"]);
    check(&["*.jsx?"], &["page.js", "page.jsx"], &["page.jsxx", "page.j", "src/page.js"]);
    check(&["**"], &["all/the/files.md", "README.md"], &[]);
    check(&["*.js"], &["app.js", "index.js"], &["js/index.js", "app.jsx"]);
    check(&["**.js"], &["index.js", "js/index.js", "src/js/app.js"], &["index.ts"]);
    check(&["docs/*"], &["docs/README.md", "docs/file.txt"], &["docs/mona/octocat.txt", "README.md"]);
    check(&["docs/**"], &["docs/README.md", "docs/mona/octocat.txt"], &["src/docs/x", "README.md"]);
    check(
        &["docs/**/*.md"],
        &["docs/README.md", "docs/mona/hello-world.md", "docs/a/markdown/file.md"],
        &["docs/a/file.txt", "README.md"],
    );
    check(
        &["**/docs/**"],
        &["docs/hello.md", "dir/docs/my-file.txt", "space/docs/plan/space.doc"],
        &["mydocs/x", "docs"],
    );
    check(&["**/README.md"], &["README.md", "js/README.md"], &["README.mdx", "js/xREADME.md"]);
    check(&["**/*src/**"], &["a/src/app.js", "my-src/code/js/app.js"], &["src-a/app.js"]);
    check(&["**/*-post.md"], &["my-post.md", "path/their-post.md"], &["post.md"]);
    check(
        &["**/migrate-*.sql"],
        &["migrate-10909.sql", "db/migrate-v1.0.sql", "db/sept/migrate-v1.sql"],
        &["db/migrate-v1.0.sqlx", "migrate/x.sql"],
    );
    // "When a file matches a pattern and also matches a negative pattern defined later
    // in the file, the file will not be included."
    check(&["*.md", "!README.md"], &["hello.md"], &["README.md", "docs/hello.md"]);
    // "Patterns are checked sequentially. A pattern that negates a previous pattern will
    // re-include file paths."
    check(&["*.md", "!README.md", "README*"], &["hello.md", "README.md", "README.doc"], &["docs/hello.md"]);
}

#[test]
fn push_and_pull_request_section_examples() {
    // on.push.branches: main, 'mona/octocat', 'releases/**'; tags: v2, v1.*
    check(
        &["main", "mona/octocat", "releases/**"],
        &["main", "mona/octocat", "releases/10"],
        &["mona/other", "release/10"],
    );
    check(&["v2", "v1.*"], &["v2", "v1.9.1"], &["v2.1", "v1"]);
    // branches-ignore: 'mona/octocat', 'releases/**-alpha'; tags-ignore: v2, v1.*
    let branches_ignore = Filter::new(&["mona/octocat", "releases/**-alpha"]).unwrap();
    assert!(branches_ignore.ignores_all(&["mona/octocat"]));
    assert!(branches_ignore.ignores_all(&["releases/beta/3-alpha"]));
    assert!(!branches_ignore.ignores_all(&["releases/beta/3"]));
    let tags_ignore = Filter::new(&["v2", "v1.*"]).unwrap();
    assert!(tags_ignore.ignores_all(&["v2"]) && tags_ignore.ignores_all(&["v1.9"]));
    assert!(!tags_ignore.ignores_all(&["v3"]));
    // 'releases/**', '!releases/**-alpha'
    check(
        &["releases/**", "!releases/**-alpha"],
        &["releases/10", "releases/beta/mona"],
        &["releases/10-alpha", "releases/beta/3-alpha"],
    );
    // paths: 'sub-project/**', '!sub-project/docs/**'
    let paths = Filter::new(&["sub-project/**", "!sub-project/docs/**"]).unwrap();
    assert!(paths.includes_any(&["sub-project/index.js"]));
    assert!(paths.includes_any(&["sub-project/src/index.js"]));
    assert!(!paths.includes_any(&["sub-project/docs/readme.md"]));
    // paths-ignore: 'docs/**' — runs only with at least one file outside docs/.
    let paths_ignore = Filter::new(&["docs/**"]).unwrap();
    assert!(paths_ignore.ignores_all(&["docs/a.md", "docs/b/c.md"]));
    assert!(!paths_ignore.ignores_all(&["docs/a.md", "src/main.rs"]));
    // paths: '**.js' (the "Including paths" example)
    let js = Filter::new(&["**.js"]).unwrap();
    assert!(js.includes_any(&["README.md", "src/app.js"]));
    assert!(!js.includes_any(&["README.md"]));
}

#[test]
fn escaped_special_characters_match_literally() {
    // "If a name contains any of these characters and you want a literal match, you need
    // to escape each of these special characters with `\`."
    check(&["release\\+candidate"], &["release+candidate"], &["releaseecandidate"]);
    check(&["what\\?"], &["what?"], &["wha", "what"]);
    check(&["\\*star"], &["*star"], &["xstar"]);
    check(&["\\[x\\]"], &["[x]"], &["x"]);
}
