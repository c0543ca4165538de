//! Differential test: which cron strings `Schedule::parse` accepts, against GitHub's
//! own validation (`isValidCron` of `@actions/workflow-parser`, run under node by
//! `tests/oracle/cron-oracle.mjs`), on hand-written tricky cases and generated ones.

mod common;

use metalfarm::workflow::cron::Schedule;

/// Strings GitHub's check accepts only because it looks names up in a plain
/// JavaScript object, so inherited properties (`constructor`, `__proto__`; lower-cased first) pass as
/// month/day names. They name no time; metalfarm rejects them. Checked exactly below.
const KNOWN_DIFFERENCES: &[&str] = &["0 0 * constructor *", "0 0 * * __proto__", "0 0 * * CONSTRUCTOR"];

const HAND_WRITTEN: &[&str] = &[
    "* * * * *",
    "0 0 * * *",
    "*/5 * * * *",
    "*/15 9-17 * * MON-FRI",
    "0 0 1 JAN,jul *",
    "0 0 * * sun",
    "0 0 * * SUN-SAT",
    "0 0 * * sat-sun",
    "0 0 * dec-jan *",
    "0 0 * jan-dec/2 *",
    "0 0 * * mon/2",
    "5/15 * * * *",
    "1-10/3 * * * *",
    "1-10/3/2 * * * *",
    "*/0 * * * *",
    "*/60 * * * *",
    "*/59 * * * *",
    "*/1.5 * * * *",
    "*/jan * * * *",
    "*/* * * * *",
    "/5 * * * *",
    "5/ * * * *",
    "61 * * * *",
    "60 * * * *",
    "59 23 31 12 6",
    "0 24 * * *",
    "0 0 0 * *",
    "0 0 32 * *",
    "0 0 * 0 *",
    "0 0 * 13 *",
    "0 0 * * 7",
    "0 0 * * -1",
    "-1 * * * *",
    "5-1 * * * *",
    "5-5 * * * *",
    "5-5/2 * * * *",
    "*-5 * * * *",
    "5-* * * * *",
    "1-2-3 * * * *",
    "1,,2 * * * *",
    ",1 * * * *",
    "1, * * * *",
    "1,2,3 * * * *",
    "1-3,5,7-9/2 * * * *",
    "? * * * *",
    "* * ? * *",
    "0 0 L * *",
    "0 0 * * MON#2",
    "0 0 15W * *",
    "0 0 * * sunday",
    "0 0 * * Mon",
    "0 0 * * mOn",
    "0\t0 * * *",
    "0 0 * * *\n",
    " * * * *",
    " 0 * * * *",
    "0 * * * * ",
    "0  0  *  *  *",
    "",
    "* * * *",
    "* * * * * *",
    "0x1f * * * *",
    "0X3B * * * *",
    "0x3C * * * *",
    "0o7 * * * *",
    "0b101 * * * *",
    "+5 * * * *",
    "05 * * * *",
    "1e1 * * * *",
    "1e-1 * * * *",
    ".5 * * * *",
    "5. * * * *",
    "1.5 * * * *",
    "Infinity * * * *",
    "inf * * * *",
    "NaN * * * *",
    "1_0 * * * *",
    "0 0 * * 0-6",
    "0 0 * * 1-7",
    "0 0 1-31 * *",
    "0 0 * 1-12 *",
    "0 0 * 1-jun *",
    "0 0 * jun-1 *",
    "0 0 * feb-jan *",
];

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const ATOMS: &[&str] = &[
    "*", "0", "1", "2", "5", "6", "7", "12", "13", "15", "23", "24", "29", "30", "31", "32", "59", "60",
    "99", "", "jan", "DEC", "Feb", "sun", "SAT", "mon", "fri", "0x1f", "+5", "1.5", "1e1", "?", "L", "07",
];

/// Values valid in every field, so that most generated strings differ from a valid
/// one in a single place.
const SAFE: &[&str] = &["*", "1", "2", "5", "6"];

fn generated_atom(rng: &mut Rng) -> String {
    match rng.below(20) {
        0..=9 => rng.pick(SAFE).to_string(),
        10..=14 => rng.pick(ATOMS).to_string(),
        15 => format!("{}-{}", rng.pick(SAFE), rng.pick(SAFE)),
        16 => format!("*/{}", rng.pick(ATOMS)),
        17 => format!("{}-{}", rng.pick(ATOMS), rng.pick(ATOMS)),
        18 => format!("{}/{}", rng.pick(ATOMS), rng.pick(ATOMS)),
        _ => format!("{}-{}/{}", rng.pick(ATOMS), rng.pick(ATOMS), rng.pick(ATOMS)),
    }
}

fn generated_field(rng: &mut Rng) -> String {
    let items = if rng.below(4) == 0 { 2 + rng.below(2) } else { 1 };
    (0..items).map(|_| generated_atom(rng)).collect::<Vec<_>>().join(",")
}

fn generated_cron(rng: &mut Rng) -> String {
    let fields = match rng.below(20) {
        0 => 4,
        1 => 6,
        _ => 5,
    };
    let separator = if rng.below(15) == 0 { "  " } else { " " };
    // Most fields stay plain so that each string tests one or two odd fields.
    let mut cron = (0..fields)
        .map(|_| if rng.below(3) == 0 { generated_field(rng) } else { rng.pick(SAFE).to_string() })
        .collect::<Vec<_>>()
        .join(separator);
    if rng.below(30) == 0 {
        cron.insert(0, ' ');
    }
    cron
}

#[test]
fn cron_acceptance_agrees_with_github() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut crons: Vec<String> = HAND_WRITTEN.iter().map(|s| s.to_string()).collect();
    crons.extend((0..4000).map(|_| generated_cron(&mut rng)));
    crons.extend(KNOWN_DIFFERENCES.iter().map(|s| s.to_string()));

    let input = serde_json::to_vec(&crons).expect("JSON");
    let output = common::run_node_oracle("cron-oracle.mjs", &[], &input);
    let github: Vec<bool> = serde_json::from_str(&output).expect("oracle answers a JSON array");
    assert_eq!(github.len(), crons.len());

    let mut disagreements = Vec::new();
    for (cron, github_ok) in crons.iter().zip(&github) {
        let ours = Schedule::parse(cron);
        let known = KNOWN_DIFFERENCES.contains(&cron.as_str());
        if known {
            assert!(*github_ok && ours.is_err(), "known difference {cron:?} no longer differs");
        } else if ours.is_ok() != *github_ok {
            disagreements.push(format!("{cron:?}: GitHub {github_ok}, metalfarm {ours:?}"));
        }
    }
    assert!(disagreements.is_empty(), "{} disagreements:\n{}", disagreements.len(), disagreements.join("\n"));

    let accepted_by_github = github.iter().filter(|ok| **ok).count();
    assert!(
        accepted_by_github > 1000 && accepted_by_github < crons.len() - 1000,
        "the generated cases should exercise both answers; GitHub accepted {accepted_by_github}"
    );
}
