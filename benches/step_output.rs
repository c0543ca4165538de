//! The controller's work per byte of step output: cut into lines, workflow commands
//! parsed, secrets masked (`exec::lines`, `exec::commands`, `exec::mask`), as the job
//! runner does for every chunk it reads from SSH.
//!
//! Issue 5 budgets the controller for 200 jobs each printing 10 MB; this prints MB/s
//! and the CPU time those 2 GB would take here. Size from `METALFARM_BENCH_MB`
//! (default 256; use 4 for a smoke run). Run with `cargo bench --bench step_output`.

use std::hint::black_box;
use std::time::Instant;

use metalfarm::exec::commands::CommandParser;
use metalfarm::exec::lines::LineBuffer;
use metalfarm::exec::mask::Masker;

/// Output like a build's: compiler lines, a group, the odd annotation, a secret now
/// and then.
fn sample_output(secret: &str) -> Vec<u8> {
    let mut text = String::from("::group::Build\n");
    for i in 0..400 {
        text.push_str(&format!(
            "   Compiling crate-{i} v0.{i}.0 (/home/runner/work/qemu/qemu/crates/crate-{i})\n"
        ));
        if i % 50 == 0 {
            text.push_str(&format!("::warning file=src/lib.rs,line={i},col=5::unused variable `x{i}`\n"));
        }
        if i % 97 == 0 {
            text.push_str(&format!("curl -H 'Authorization: Bearer {secret}' https://example.invalid\n"));
        }
    }
    text.push_str("::endgroup::\n");
    text.into_bytes()
}

fn main() {
    let megabytes: usize =
        std::env::var("METALFARM_BENCH_MB").ok().and_then(|v| v.parse().ok()).unwrap_or(256);
    let mut masker = Masker::new();
    for i in 0..20 {
        masker.add(&format!("s3cr3t-value-number-{i:02}-abcdefghijkl"));
    }
    let sample = sample_output("s3cr3t-value-number-07-abcdefghijkl");
    let total = megabytes * 1024 * 1024;

    let start = Instant::now();
    let mut buffer = LineBuffer::new();
    let mut parser = CommandParser::new();
    let (mut fed, mut lines, mut commands, mut masked_bytes) = (0, 0usize, 0usize, 0usize);
    while fed < total {
        // SSH hands the runner chunks of up to 32 KiB.
        for chunk in sample.chunks(32 * 1024) {
            for line in buffer.push(chunk, &masker) {
                lines += 1;
                let logged = match parser.parse_line(&line) {
                    Some(parsed) => {
                        commands += 1;
                        parsed.log
                    }
                    None => vec![line],
                };
                for l in &logged {
                    masked_bytes += black_box(masker.mask(l)).len();
                }
            }
        }
        fed += sample.len();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let mb = fed as f64 / (1024.0 * 1024.0);
    println!("step output: {mb:.0} MiB, {lines} lines, {commands} commands, {masked_bytes} bytes logged");
    println!("  {:.0} MiB/s on one core", mb / elapsed);
    println!("  200 jobs x 10 MB of output: {:.1} s of CPU", 2000.0 / (mb / elapsed));
}
