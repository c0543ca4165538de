//! What a finished job's check run says: a title, a summary (its steps and their
//! outcomes, what the steps wrote to `$GITHUB_STEP_SUMMARY`, the artifacts) and the
//! annotations its steps made.

use crate::exec::commands::{Annotation as StepAnnotation, AnnotationLevel};
use crate::exec::job::{Conclusion, JobOutcome};
use crate::store::{Annotation, StoreError, Tx};

/// Where an annotation without a file points, as GitHub's runner does.
const NO_FILE: &str = ".github";

/// A finished job as its check run shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobReport {
    pub conclusion: Conclusion,
    pub title: String,
    pub summary: String,
    pub annotations: Vec<Annotation>,
}

impl JobReport {
    /// `artifacts_url`: where the run's artifacts are served
    /// (`{public_url}/api/v1/runs/{run}/artifacts`), to link each of them.
    pub fn new(host: &str, outcome: &JobOutcome, artifacts_url: Option<&str>) -> JobReport {
        let failed = outcome.steps.iter().find(|s| s.conclusion == Conclusion::Failure);
        let title = match (outcome.conclusion, failed) {
            (Conclusion::Success, _) => format!("Succeeded on {host}"),
            (Conclusion::Failure, Some(step)) if outcome.farm_failure.is_some() => {
                format!("Farm failure at step {}: {}", step.number, step.name)
            }
            (Conclusion::Failure, Some(step)) => format!("Failed at step {}: {}", step.number, step.name),
            (Conclusion::Failure, None) => format!("Failed on {host}"),
            (Conclusion::Cancelled, _) => "Cancelled".to_owned(),
            (Conclusion::Skipped, _) => "Skipped".to_owned(),
        };
        let mut summary = format!("Ran on host `{host}`.\n\n");
        if let Some(reason) = &outcome.farm_failure {
            summary.push_str(&format!(
                "**The farm failed the job:** {reason}\n\nThis is a failure of the farm itself, not of the job \
                 or of `{host}`.\n\n"
            ));
        }
        summary.push_str(&steps_table(outcome));
        if !outcome.artifacts.is_empty() {
            summary.push_str("\n**Artifacts:** ");
            let shown: Vec<String> = outcome
                .artifacts
                .iter()
                .map(|a| match artifacts_url {
                    Some(base) => format!("[`{a}`]({}/{a})", base.trim_end_matches('/')),
                    None => format!("`{a}`"),
                })
                .collect();
            summary.push_str(&shown.join(", "));
            summary.push('\n');
        }
        if !outcome.summary.trim().is_empty() {
            summary.push_str("\n---\n\n");
            summary.push_str(outcome.summary.trim_end());
            summary.push('\n');
        }
        JobReport {
            conclusion: outcome.conclusion,
            title,
            summary,
            annotations: outcome.annotations.iter().map(check_annotation).collect(),
        }
    }

    /// Queues the report as the job's check run's completed state.
    pub async fn show(&self, tx: &mut Tx, job: i64) -> Result<(), StoreError> {
        if let Some(check) = tx.job_check(job).await? {
            let mut state = check.state;
            state.status = "completed".to_owned();
            state.conclusion = Some(self.conclusion.as_str().to_owned());
            state.title = self.title.clone();
            state.summary = self.summary.clone();
            state.annotations = self.annotations.clone();
            state.actions.clear();
            tx.queue_check_run_state(check.check_run_id, &state).await?;
        }
        Ok(())
    }
}

/// The job's steps as a markdown table.
pub fn steps_table(outcome: &JobOutcome) -> String {
    if outcome.steps.is_empty() {
        return "No step ran.\n".to_owned();
    }
    let mut table = String::from("| # | Step | Outcome | Time |\n|---|---|---|---|\n");
    for step in &outcome.steps {
        let result = if step.outcome != step.conclusion {
            format!("{} (continue-on-error)", step.outcome.as_str())
        } else {
            step.conclusion.as_str().to_owned()
        };
        let name = step.name.replace('|', "\\|");
        table.push_str(&format!(
            "| {} | {name} | {result} | {:.1} s |\n",
            step.number,
            step.duration.as_secs_f64()
        ));
    }
    table
}

/// A step's annotation as the forge takes it (a path and lines are required there).
fn check_annotation(annotation: &StepAnnotation) -> Annotation {
    let start_line = annotation.line.unwrap_or(1).max(1);
    let end_line = annotation.end_line.unwrap_or(start_line).max(start_line);
    Annotation {
        path: annotation.file.clone().filter(|f| !f.is_empty()).unwrap_or_else(|| NO_FILE.to_owned()),
        start_line,
        end_line,
        // The forge takes columns only on a one-line annotation.
        start_column: annotation.col.filter(|_| start_line == end_line),
        level: match annotation.level {
            AnnotationLevel::Error => "failure",
            AnnotationLevel::Warning => "warning",
            AnnotationLevel::Notice => "notice",
        }
        .to_owned(),
        message: annotation.message.clone(),
        title: annotation.title.clone(),
    }
}
