//! A step's output on its way to the log: split into lines, workflow commands taken
//! out (`::add-mask::`, annotations, groups), secrets masked — before anything leaves
//! this module, so no secret reaches a log, an annotation or the forge.

use super::commands::{Annotation, CommandParser, StepAnnotations, WorkflowCommand};
use super::lines::LineBuffer;
use super::mask::Masker;

/// What a job's output turns into: masked log lines (GitHub's `##[…]` markers for
/// groups and annotations, as its raw logs show them), masked annotations, and what
/// the deprecated commands asked of the step.
#[derive(Debug, Default)]
pub struct OutputFilter {
    pub masker: Masker,
    parser: CommandParser,
    stdout: LineBuffer,
    stderr: LineBuffer,
    /// Lines ready for the log.
    lines: Vec<String>,
    /// The current step's annotations (GitHub keeps 10 of each level per step).
    step_annotations: StepAnnotations,
    /// The annotations of the steps that ended.
    annotations: Vec<Annotation>,
    /// What the current step's commands asked for.
    pub step: StepCommands,
}

/// What a step asked for through workflow commands rather than files.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StepCommands {
    /// `::set-output` (deprecated, still honoured).
    pub outputs: Vec<(String, String)>,
    /// `::set-env` and `::add-path`, when the step allowed unsecure commands.
    pub env: Vec<(String, String)>,
    pub paths: Vec<String>,
    /// A command GitHub could not process fails the step.
    pub failed: bool,
}

impl OutputFilter {
    pub fn new(masker: Masker) -> OutputFilter {
        OutputFilter { masker, ..OutputFilter::default() }
    }

    /// A step starts: whether it allows `set-env`/`add-path`
    /// (`ACTIONS_ALLOW_UNSECURE_COMMANDS`) and shows `::debug::` (`ACTIONS_STEP_DEBUG`).
    pub fn begin_step(&mut self, allow_unsecure_commands: bool, step_debug: bool) {
        self.step = StepCommands::default();
        self.annotations.extend(std::mem::take(&mut self.step_annotations).into_kept());
        self.parser.set_allow_unsecure_commands(allow_unsecure_commands);
        self.parser.set_step_debug(step_debug);
    }

    pub fn stdout(&mut self, bytes: &[u8]) {
        for line in self.stdout.push(bytes, &self.masker) {
            self.line(&line);
        }
    }

    pub fn stderr(&mut self, bytes: &[u8]) {
        for line in self.stderr.push(bytes, &self.masker) {
            self.line(&line);
        }
    }

    /// The step's process ended: its last unterminated lines.
    pub fn end_output(&mut self) {
        for line in [self.stdout.finish(), self.stderr.finish()].into_iter().flatten() {
            self.line(&line);
        }
    }

    /// Every annotation so far; the current step's are closed.
    pub fn take_annotations(&mut self) -> Vec<Annotation> {
        self.annotations.extend(std::mem::take(&mut self.step_annotations).into_kept());
        std::mem::take(&mut self.annotations)
    }

    /// One line of a step's output.
    pub fn line(&mut self, line: &str) {
        let Some(parsed) = self.parser.parse_line(line) else {
            return self.log(line);
        };
        // Before anything of the line is logged.
        if let Some(secret) = parsed.command.secret() {
            self.masker.add(secret);
        }
        match parsed.command {
            WorkflowCommand::SetOutput { name, value } => self.step.outputs.push((name, value)),
            WorkflowCommand::SetEnv { name, value } => self.step.env.push((name, value)),
            WorkflowCommand::AddPath(dir) => self.step.paths.push(dir),
            _ => {}
        }
        for text in &parsed.log {
            self.log(text);
        }
        for annotation in parsed.annotations {
            self.record(annotation);
        }
        self.step.failed |= parsed.fails_step;
    }

    /// A runner message (not step output): logged masked, never parsed for commands.
    pub fn log(&mut self, text: &str) {
        for line in text.split('\n') {
            self.lines.push(self.masker.mask(line).into_owned());
        }
    }

    /// An annotation the runner makes: logged as GitHub's raw log shows it, and kept.
    pub fn annotate(&mut self, annotation: Annotation) {
        for line in annotation.log_lines() {
            self.log(&line);
        }
        self.record(annotation);
    }

    fn record(&mut self, mut annotation: Annotation) {
        annotation.message = self.masker.mask(&annotation.message).into_owned();
        annotation.title = annotation.title.map(|t| self.masker.mask(&t).into_owned());
        self.step_annotations.add(annotation);
    }

    /// The lines gathered since the last call.
    pub fn take_lines(&mut self) -> Vec<String> {
        std::mem::take(&mut self.lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_after_add_mask_and_keeps_commands_out_of_the_log() {
        let mut masker = Masker::default();
        masker.add("hunter2");
        let mut filter = OutputFilter::new(masker);
        filter.stdout(b"pw is hunter2\n::add-mask::s3cret\nnow s3cret\n::group::Build\n::endgroup::\n");
        filter.stdout(b"::set-output name=x::1\n");
        filter.stderr(b"::error file=a.c,line=3::bad hunter2\n");
        filter.end_output();
        let lines = filter.take_lines();
        assert_eq!(lines[..4], ["pw is ***", "now ***", "##[group]Build", "##[endgroup]"]);
        assert!(lines[4].starts_with("##[warning]The `set-output` command is deprecated"), "{lines:?}");
        assert_eq!(lines[5..], ["##[error]bad ***"]);
        // The deprecation warning of set-output, then the error.
        let annotations = filter.take_annotations();
        assert_eq!(annotations.len(), 2);
        assert_eq!(annotations[1].file.as_deref(), Some("a.c"));
        assert_eq!(annotations[1].message, "bad ***");
        assert_eq!(filter.step.outputs, [("x".to_owned(), "1".to_owned())]);
    }

    #[test]
    fn a_secret_split_by_the_line_cut_is_masked() {
        use super::super::lines::MAX_LINE;
        for off in [1, 5, 10, 15] {
            let mut masker = Masker::default();
            masker.add("hunter2-and-more");
            let mut filter = OutputFilter::new(masker);
            let mut output = vec![b'B'; MAX_LINE - off];
            output.extend_from_slice(b"hunter2-and-more\n");
            for chunk in output.chunks(32 * 1024) {
                filter.stdout(chunk);
            }
            filter.end_output();
            let lines = filter.take_lines();
            assert!(lines.iter().all(|l| !l.contains("hunter") && !l.contains("more")), "off {off}");
            assert!(lines.iter().any(|l| l.ends_with("***")), "off {off}");
        }
    }
}
