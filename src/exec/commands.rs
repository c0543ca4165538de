//! Workflow commands in a step's output (stdout and stderr alike), parsed as GitHub's
//! runner parses them (`ActionCommand`, `ActionCommandManager`):
//!
//! - `::name prop=value,prop=value::data`, after leading whitespace; and the legacy
//!   `##[name prop=value;prop=value]data` anywhere in a line, which GitHub still accepts.
//! - Command and property names are case-insensitive; property keys are not trimmed
//!   (`line= 1` is kept, ` line=1` is not a `line`); an item without `=` or with an empty
//!   key or value is skipped; a later duplicate wins.
//! - Escapes are undone in GitHub's order, `%25` last so `%250A` stays `%0A`: data
//!   `%0D %0A %25`; properties also `%3A` (`:`) and `%2C` (`,`); the legacy form
//!   `%3B %0D %0A %5D %25`.
//! - A name GitHub does not know is no command: the line is logged as it is.
//! - `::stop-commands::TOKEN` stops all processing until `::TOKEN::`; a token that is
//!   empty, `pause-logging` or a command name is refused, as GitHub refuses it, unless
//!   `ACTIONS_ALLOW_UNSECURE_STOPCOMMAND_TOKENS` opts in; a token longer than 6 characters
//!   is masked ([`WorkflowCommand::secret`]).
//!
//! Deprecated and disabled commands, as on GitHub today: `set-output` and `save-state`
//! still work, each with GitHub's deprecation warning (an annotation); `set-env` and
//! `add-path` fail the step unless the step's env has `ACTIONS_ALLOW_UNSECURE_COMMANDS`
//! set to `true` ([`CommandParser::set_allow_unsecure_commands`]). Problem matchers
//! (`add-matcher`, `remove-matcher`) are not applied: a warning says so.
//!
//! The parser decides; it does nothing: each command comes back with the lines
//! GitHub's runner writes to the log for it and the annotations it makes.

/// The level of an annotation (`::error`, `::warning`, `::notice`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnnotationLevel {
    Error,
    Warning,
    Notice,
}

impl AnnotationLevel {
    /// The command's name, which is also the tag of its log line (`##[error]`).
    pub fn as_str(self) -> &'static str {
        match self {
            AnnotationLevel::Error => "error",
            AnnotationLevel::Warning => "warning",
            AnnotationLevel::Notice => "notice",
        }
    }
}

/// An annotation: from `::error`/`::warning`/`::notice`, or made by the runner about a
/// command (a deprecation warning, a refused command).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Annotation {
    pub level: AnnotationLevel,
    pub message: String,
    pub file: Option<String>,
    pub line: Option<u32>,
    pub end_line: Option<u32>,
    pub col: Option<u32>,
    pub end_column: Option<u32>,
    pub title: Option<String>,
}

impl Annotation {
    /// An annotation with a message and no position.
    pub fn new(level: AnnotationLevel, message: impl Into<String>) -> Self {
        Annotation {
            level,
            message: message.into(),
            file: None,
            line: None,
            end_line: None,
            col: None,
            end_column: None,
            title: None,
        }
    }

    /// Makes `file` relative to the workspace when it lies under it, as GitHub's runner
    /// does before it sends the annotation (`/w/repo/src/a.rs` → `src/a.rs`).
    pub fn relativize_file(&mut self, workspace: &str) {
        let workspace = workspace.trim_end_matches('/');
        let relative = self.file.as_deref().and_then(|file| {
            file.strip_prefix(workspace)
                .and_then(|rest| rest.strip_prefix('/'))
                .filter(|rest| !rest.is_empty())
        });
        if let Some(relative) = relative {
            self.file = Some(relative.to_owned());
        }
    }

    /// The log lines GitHub writes for it: `##[error]message`, a multi-line message's
    /// further lines as they are.
    pub fn log_lines(&self) -> Vec<String> {
        let mut lines = self.message.split('\n').map(|l| l.trim_end_matches('\r'));
        let first = lines.next().unwrap_or_default();
        let mut out = vec![format!("##[{}]{first}", self.level.as_str())];
        out.extend(lines.map(str::to_owned));
        out
    }
}

/// The annotations of one step as GitHub's runner keeps them: the first 10 of each
/// level (later ones are only logged) with messages cut at 4096 characters
/// (`ExecutionContext._maxCountPerIssueType`, `_maxIssueMessageLength`).
#[derive(Debug, Clone, Default)]
pub struct StepAnnotations {
    kept: Vec<Annotation>,
    /// Every annotation of each level, kept or not: errors, warnings, notices.
    counts: [usize; 3],
}

impl StepAnnotations {
    pub const PER_LEVEL: usize = 10;
    pub const MESSAGE_LIMIT: usize = 4096;

    pub fn new() -> Self {
        Self::default()
    }

    /// Takes an annotation (already masked); keeps it if its level has room.
    pub fn add(&mut self, mut annotation: Annotation) {
        let count = &mut self.counts[annotation.level as usize];
        *count += 1;
        if *count > Self::PER_LEVEL {
            return;
        }
        if let Some((cut, _)) = annotation.message.char_indices().nth(Self::MESSAGE_LIMIT) {
            annotation.message.truncate(cut);
        }
        self.kept.push(annotation);
    }

    /// How many annotations of a level the step made, kept or not.
    pub fn count(&self, level: AnnotationLevel) -> usize {
        self.counts[level as usize]
    }

    /// The kept annotations, in the order they came.
    pub fn kept(&self) -> &[Annotation] {
        &self.kept
    }

    pub fn into_kept(self) -> Vec<Annotation> {
        self.kept
    }
}

/// What a command line asks of the runner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkflowCommand {
    /// `::error`, `::warning`, `::notice` (also in [`Parsed::annotations`]).
    Annotation(Annotation),
    /// `::add-mask::VALUE`, never blank: mask it in everything from now on.
    AddMask(String),
    /// `::group::TITLE`: a fold in the log view starts.
    Group(String),
    /// `::endgroup::`.
    EndGroup,
    /// `::debug::MESSAGE` (logged only when step debug logging is on).
    Debug(String),
    /// `::set-output name=NAME::VALUE` (deprecated; still honoured).
    SetOutput { name: String, value: String },
    /// `::save-state name=NAME::VALUE` (deprecated; state for an action's post step).
    SaveState { name: String, value: String },
    /// `::set-env name=NAME::VALUE`, only when unsecure commands are allowed.
    SetEnv { name: String, value: String },
    /// `::add-path::DIR`, only when unsecure commands are allowed.
    AddPath(String),
    /// `::echo::on` / `::echo::off` (the parser keeps the state).
    Echo(bool),
    /// `::stop-commands::TOKEN`: no command is processed until `::TOKEN::`.
    StopCommands(String),
    /// `::TOKEN::` after `::stop-commands::TOKEN`: processing resumes.
    ResumeCommands(String),
    /// A command GitHub knows that this farm does not apply (problem matchers).
    Ignored(String),
    /// A command GitHub refuses (disabled, a required field missing, a bad value):
    /// nothing to do beyond [`Parsed::annotations`] and [`Parsed::fails_step`].
    Rejected(String),
}

impl WorkflowCommand {
    /// A value to add to the masker before the command's log lines are written:
    /// `::add-mask::`'s value, and a stop token longer than 6 characters (UTF-16 units,
    /// as .NET counts), which GitHub masks so a step cannot be made to resume.
    pub fn secret(&self) -> Option<&str> {
        match self {
            WorkflowCommand::AddMask(value) => Some(value),
            WorkflowCommand::StopCommands(token) if token.encode_utf16().count() > 6 => Some(token),
            _ => None,
        }
    }
}

/// A line that was a workflow command. In GitHub's order, the runner: adds
/// [`WorkflowCommand::secret`] to the masker; writes `log` (masked, like every line);
/// records `annotations` (their messages masked too); acts on `command`; and when
/// `fails_step`, lets the step run on but ends it failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub command: WorkflowCommand,
    /// What goes into the step's log instead of the line.
    pub log: Vec<String>,
    /// The check-run annotations the line makes.
    pub annotations: Vec<Annotation>,
    /// GitHub fails the step when it cannot process a command.
    pub fails_step: bool,
}

/// GitHub's message for `set-env`/`add-path` when unsecure commands are not allowed.
fn disabled_message(command: &str) -> String {
    format!(
        "The `{command}` command is disabled. Please upgrade to using Environment Files or opt into \
         unsecure command execution by setting the `ACTIONS_ALLOW_UNSECURE_COMMANDS` environment \
         variable to `true`. For more information see: \
         https://github.blog/changelog/2020-10-01-github-actions-deprecating-set-env-and-add-path-commands/"
    )
}

/// GitHub's warning for `set-output`/`save-state`.
fn deprecated_message(command: &str) -> String {
    format!(
        "The `{command}` command is deprecated and will be disabled soon. Please upgrade to using \
         Environment Files. For more information see: \
         https://github.blog/changelog/2022-10-11-github-actions-deprecating-save-state-and-set-output-commands/"
    )
}

const STOP_TOKEN_REFUSED: &str = "You cannot use a endToken that is an empty string, the string \
     'pause-logging', or another workflow command. For more information see: \
     https://docs.github.com/actions/learn-github-actions/workflow-commands-for-github-actions#example-stopping-and-starting-workflow-commands \
     or opt into insecure command execution by setting the `ACTIONS_ALLOW_UNSECURE_STOPCOMMAND_TOKENS` \
     environment variable to `true`.";

/// The commands GitHub's runner registers (`internal-set-repo-path` is for its own
/// plugins only).
const COMMANDS: &[&str] = &[
    "stop-commands",
    "set-env",
    "set-output",
    "save-state",
    "add-mask",
    "add-path",
    "add-matcher",
    "remove-matcher",
    "debug",
    "warning",
    "error",
    "notice",
    "group",
    "endgroup",
    "echo",
];

/// The name a line's command has when it is the stop token.
const STOP_TOKEN: &str = "\0stop-token";

/// One command as written: its name (as registered, or [`STOP_TOKEN`]), properties and
/// data, unescaped.
struct RawCommand {
    name: &'static str,
    properties: Vec<(String, String)>,
    data: String,
}

impl RawCommand {
    /// A property by key, case-insensitively; the last one wins as in GitHub's dictionary.
    fn property(&self, key: &str) -> Option<&str> {
        self.properties.iter().rev().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v.as_str())
    }
}

/// Parses the workflow commands of one job's steps, in output order.
#[derive(Debug, Clone, Default)]
pub struct CommandParser {
    /// Set by `::stop-commands::TOKEN` until `::TOKEN::`.
    stop_token: Option<String>,
    echo: bool,
    step_debug: bool,
    allow_unsecure_commands: bool,
    allow_unsecure_stop_tokens: bool,
}

impl CommandParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Step debug logging (`ACTIONS_STEP_DEBUG`): `::debug::` lines reach the log, and
    /// echo starts on (as GitHub initializes it; `::echo::off` still turns it off).
    pub fn set_step_debug(&mut self, on: bool) {
        self.step_debug = on;
        self.echo = on;
    }

    /// Whether `set-env`/`add-path` work: true when the step's env has
    /// `ACTIONS_ALLOW_UNSECURE_COMMANDS` set to `true` (any case, as .NET parses it).
    pub fn set_allow_unsecure_commands(&mut self, allow: bool) {
        self.allow_unsecure_commands = allow;
    }

    /// Whether any `::stop-commands::` token is accepted: true when the step's env has
    /// `ACTIONS_ALLOW_UNSECURE_STOPCOMMAND_TOKENS` set to `true` or `1` (any case).
    pub fn set_allow_unsecure_stop_tokens(&mut self, allow: bool) {
        self.allow_unsecure_stop_tokens = allow;
    }

    /// Whether commands are echoed to the log (`::echo::on`); off by default, on with
    /// step debug logging.
    pub fn echo(&self) -> bool {
        self.echo
    }

    /// The command in one output line (without its line break), or `None` when the line
    /// is to be logged as it is.
    pub fn parse_line(&mut self, line: &str) -> Option<Parsed> {
        if line.is_empty() {
            return None;
        }
        let raw = self.split(line)?;

        if self.stop_token.is_some() {
            if raw.name != STOP_TOKEN {
                return None;
            }
            let token = self.stop_token.take().unwrap_or_default();
            return Some(Parsed {
                command: WorkflowCommand::ResumeCommands(token),
                log: vec![line.to_owned()],
                annotations: Vec::new(),
                fails_step: false,
            });
        }

        let echoed = self.echo;
        let mut parsed = self.interpret(raw, line);
        if echoed && echoes(&parsed.command) {
            parsed.log.insert(0, line.to_owned());
        }
        Some(parsed)
    }

    /// Finds a registered command in the line: the `::` form first, then `##[`.
    fn split(&self, line: &str) -> Option<RawCommand> {
        self.split_v2(line).or_else(|| self.split_legacy(line))
    }

    /// The registered command with this name: GitHub's, or the stop token while
    /// commands are stopped.
    fn registered(&self, name: &str) -> Option<&'static str> {
        // While stopped the token comes first: an opted-in token may be a command's name.
        // An empty token never resumes, as on GitHub.
        let is_token = |t: &&String| !t.is_empty() && t.eq_ignore_ascii_case(name);
        self.stop_token
            .as_ref()
            .filter(is_token)
            .map(|_| STOP_TOKEN)
            .or_else(|| COMMANDS.iter().copied().find(|c| c.eq_ignore_ascii_case(name)))
    }

    fn split_v2(&self, line: &str) -> Option<RawCommand> {
        let rest = line.trim_start().strip_prefix("::")?;
        let end = rest.find("::")?;
        let (info, data) = (&rest[..end], &rest[end + 2..]);
        let (name, props) = match info.find(' ') {
            Some(space) => (&info[..space], Some(info[space + 1..].trim())),
            None => (info, None),
        };
        let name = self.registered(name)?;
        let properties = props.map(|p| split_properties(p, ',', unescape_property)).unwrap_or_default();
        Some(RawCommand { name, properties, data: unescape_data(data) })
    }

    fn split_legacy(&self, line: &str) -> Option<RawCommand> {
        let start = line.find("##[")? + 3;
        let end = start + line[start..].find(']')?;
        let (info, data) = (&line[start..end], &line[end + 1..]);
        let (name, props) = match info.find(' ') {
            Some(space) => (&info[..space], Some(&info[space + 1..])),
            None => (info, None),
        };
        let name = self.registered(name)?;
        let properties = props.map(|p| split_properties(p, ';', unescape_legacy)).unwrap_or_default();
        Some(RawCommand { name, properties, data: unescape_legacy(data) })
    }

    /// What the command does, as GitHub's command extensions decide it.
    fn interpret(&mut self, raw: RawCommand, line: &str) -> Parsed {
        let ok = |command, log| Parsed { command, log, annotations: Vec::new(), fails_step: false };
        // GitHub reports a command it cannot process with two errors, echoing the line
        // (only the name for commands that are never echoed, which may hold secrets).
        let refused = |name: &str, reason: String| {
            let shown = if never_echoed(name) { name } else { line };
            let errors = [
                Annotation::new(
                    AnnotationLevel::Error,
                    format!("Unable to process command '{shown}' successfully."),
                ),
                Annotation::new(AnnotationLevel::Error, reason),
            ];
            Parsed {
                command: WorkflowCommand::Rejected(name.to_owned()),
                log: errors.iter().flat_map(Annotation::log_lines).collect(),
                annotations: errors.into(),
                fails_step: true,
            }
        };
        let name_of = |raw: &RawCommand| raw.property("name").filter(|n| !n.is_empty()).map(str::to_owned);

        match raw.name {
            "stop-commands" => {
                let token = raw.data;
                let invalid = token.is_empty()
                    || token.eq_ignore_ascii_case("pause-logging")
                    || self.registered(&token).is_some();
                if invalid && !self.allow_unsecure_stop_tokens {
                    // GitHub throws this one outside the command's error handling: one
                    // error, and the step fails.
                    let error = Annotation::new(AnnotationLevel::Error, STOP_TOKEN_REFUSED);
                    return Parsed {
                        command: WorkflowCommand::Rejected(raw.name.to_owned()),
                        log: error.log_lines(),
                        annotations: vec![error],
                        fails_step: true,
                    };
                }
                self.stop_token = Some(token.clone());
                ok(WorkflowCommand::StopCommands(token), vec![line.to_owned()])
            }
            "error" | "warning" | "notice" => {
                let level = match raw.name {
                    "error" => AnnotationLevel::Error,
                    "warning" => AnnotationLevel::Warning,
                    _ => AnnotationLevel::Notice,
                };
                let annotation = annotation(level, &raw);
                Parsed {
                    log: annotation.log_lines(),
                    annotations: vec![annotation.clone()],
                    command: WorkflowCommand::Annotation(annotation),
                    fails_step: false,
                }
            }
            "add-mask" => {
                if raw.data.trim().is_empty() {
                    let warning = Annotation::new(
                        AnnotationLevel::Warning,
                        "Can't add secret mask for empty string in ##[add-mask] command.",
                    );
                    return Parsed {
                        command: WorkflowCommand::Rejected(raw.name.to_owned()),
                        log: warning.log_lines(),
                        annotations: vec![warning],
                        fails_step: false,
                    };
                }
                // Echo shows the command, never the value.
                let log = if self.echo {
                    vec!["::add-mask::***".to_owned()]
                } else {
                    Vec::new()
                };
                ok(WorkflowCommand::AddMask(raw.data), log)
            }
            "group" => {
                let log = vec![format!("##[group]{}", raw.data)];
                ok(WorkflowCommand::Group(raw.data), log)
            }
            "endgroup" => ok(WorkflowCommand::EndGroup, vec!["##[endgroup]".to_owned()]),
            "debug" => {
                let log = if self.step_debug {
                    raw.data
                        .split('\n')
                        .map(|l| format!("##[debug]{}", l.trim_end_matches('\r')))
                        .collect()
                } else {
                    Vec::new()
                };
                ok(WorkflowCommand::Debug(raw.data), log)
            }
            "set-output" | "save-state" => {
                // GitHub warns before it looks at the name.
                let warning = Annotation::new(AnnotationLevel::Warning, deprecated_message(raw.name));
                let Some(name) = name_of(&raw) else {
                    let mut parsed = refused(
                        raw.name,
                        format!("Required field 'name' is missing in ##[{}] command.", raw.name),
                    );
                    parsed.log.splice(0..0, warning.log_lines());
                    parsed.annotations.insert(0, warning);
                    return parsed;
                };
                let value = raw.data;
                let command = if raw.name == "set-output" {
                    WorkflowCommand::SetOutput { name, value }
                } else {
                    WorkflowCommand::SaveState { name, value }
                };
                Parsed {
                    command,
                    log: warning.log_lines(),
                    annotations: vec![warning],
                    fails_step: false,
                }
            }
            "set-env" => {
                if !self.allow_unsecure_commands {
                    return refused(raw.name, disabled_message(raw.name));
                }
                let Some(name) = name_of(&raw) else {
                    return refused(
                        raw.name,
                        "Required field 'name' is missing in ##[set-env] command.".to_owned(),
                    );
                };
                if name.eq_ignore_ascii_case("NODE_OPTIONS") {
                    let error = Annotation::new(
                        AnnotationLevel::Error,
                        "Can't update NODE_OPTIONS environment variable using ::set-env:: command.",
                    );
                    return Parsed {
                        command: WorkflowCommand::Rejected(raw.name.to_owned()),
                        log: error.log_lines(),
                        annotations: vec![error],
                        fails_step: false,
                    };
                }
                ok(
                    WorkflowCommand::SetEnv {
                        name,
                        value: raw.data,
                    },
                    Vec::new(),
                )
            }
            "add-path" => {
                if !self.allow_unsecure_commands {
                    return refused(raw.name, disabled_message(raw.name));
                }
                if raw.data.is_empty() {
                    return refused(raw.name, "Value cannot be null. (Parameter 'path')".to_owned());
                }
                ok(WorkflowCommand::AddPath(raw.data), Vec::new())
            }
            "echo" => match raw.data.trim().to_ascii_uppercase().as_str() {
                "ON" => {
                    self.echo = true;
                    ok(WorkflowCommand::Echo(true), Vec::new())
                }
                "OFF" => {
                    self.echo = false;
                    ok(WorkflowCommand::Echo(false), Vec::new())
                }
                _ => refused(
                    raw.name,
                    format!(
                        "Invalid echo command value. Possible values can be: 'on', 'off'. Current value is: '{}'.",
                        raw.data
                    ),
                ),
            },
            // add-matcher, remove-matcher: say so rather than pass without the annotations
            // a matcher would have made.
            other => {
                let warning = Annotation::new(
                    AnnotationLevel::Warning,
                    format!("Problem matchers are not supported by metalfarm: '::{other}::' was ignored."),
                );
                Parsed {
                    command: WorkflowCommand::Ignored(other.to_owned()),
                    log: warning.log_lines(),
                    annotations: vec![warning],
                    fails_step: false,
                }
            }
        }
    }
}

/// Commands whose line GitHub never echoes (they may carry secrets or are shown anyway).
fn never_echoed(name: &str) -> bool {
    matches!(name, "add-mask" | "debug" | "error" | "warning" | "notice")
}

/// Whether `::echo::on` shows the command's line before its effect (also before the
/// errors of a command that fails).
fn echoes(command: &WorkflowCommand) -> bool {
    match command {
        WorkflowCommand::Annotation(_) | WorkflowCommand::AddMask(_) | WorkflowCommand::Debug(_) => false,
        WorkflowCommand::Rejected(name) => !never_echoed(name) && name != "stop-commands",
        // Logged as they are anyway.
        WorkflowCommand::StopCommands(_) | WorkflowCommand::ResumeCommands(_) => false,
        _ => true,
    }
}

/// An annotation from the command's properties, with GitHub's corrections of lines and
/// columns: an end without a start becomes the start; columns need a line and only
/// stand on a single line; an end before its start drops both.
fn annotation(level: AnnotationLevel, raw: &RawCommand) -> Annotation {
    let number = |key: &str| raw.property(key).and_then(|v| v.trim().parse::<u32>().ok());
    let mut line = number("line");
    let end_line = number("endLine");
    let mut col = number("col");
    let mut end_column = number("endColumn");
    let has_column = col.is_some() || end_column.is_some();

    if line.is_none() {
        line = end_line;
    }
    if col.is_none() {
        col = end_column;
    }
    let mut end_line = end_line;
    if line.is_none() && has_column {
        (col, end_column) = (None, None);
    }
    if end_line.is_some() && end_line != line && has_column {
        (col, end_column) = (None, None);
    }
    if let (Some(start), Some(end)) = (line, end_line) {
        if end < start {
            (line, end_line) = (None, None);
        }
    }
    if let (Some(start), Some(end)) = (col, end_column) {
        if end < start {
            (col, end_column) = (None, None);
        }
    }

    let text = |key: &str| raw.property(key).filter(|v| !v.is_empty()).map(str::to_owned);
    Annotation {
        level,
        message: raw.data.clone(),
        file: text("file"),
        line,
        end_line,
        col,
        end_column,
        title: text("title"),
    }
}

/// Splits `key=value` items as .NET's `Split(sep, RemoveEmptyEntries)` then
/// `Split('=', 2, RemoveEmptyEntries)` do: empty items dropped, `=`s right after the
/// first one skipped, items with an empty key or value dropped.
fn split_properties(text: &str, separator: char, unescape: fn(&str) -> String) -> Vec<(String, String)> {
    text.split(separator)
        .filter_map(|item| {
            let (key, value) = item.split_once('=')?;
            let value = value.trim_start_matches('=');
            (!key.is_empty() && !value.is_empty()).then(|| (key.to_owned(), unescape(value)))
        })
        .collect()
}

fn unescape(text: &str, mappings: &[(&str, &str)]) -> String {
    let mut out = text.to_owned();
    for (escaped, plain) in mappings {
        if out.contains(escaped) {
            out = out.replace(escaped, plain);
        }
    }
    out
}

fn unescape_data(text: &str) -> String {
    unescape(text, &[("%0D", "\r"), ("%0A", "\n"), ("%25", "%")])
}

fn unescape_property(text: &str) -> String {
    unescape(text, &[("%0D", "\r"), ("%0A", "\n"), ("%3A", ":"), ("%2C", ","), ("%25", "%")])
}

fn unescape_legacy(text: &str) -> String {
    unescape(text, &[("%3B", ";"), ("%0D", "\r"), ("%0A", "\n"), ("%5D", "]"), ("%25", "%")])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Option<Parsed> {
        CommandParser::new().parse_line(line)
    }

    fn command(line: &str) -> Option<WorkflowCommand> {
        parse(line).map(|p| p.command)
    }

    fn annotation_of(line: &str) -> Annotation {
        match command(line) {
            Some(WorkflowCommand::Annotation(a)) => a,
            other => panic!("{line:?}: expected an annotation, got {other:?}"),
        }
    }

    #[test]
    fn plain_lines_are_no_commands() {
        for line in [
            "",
            "hello",
            "::",
            "::::",
            ":: error::x",
            "::unknown::x",
            "::error",
            "::error x",
            "##[unknown]x",
            "##[error",
            "echo ::error::not at the start",
        ] {
            assert_eq!(command(line), None, "{line:?}");
        }
    }

    #[test]
    fn annotations_with_all_properties() {
        let a = annotation_of(
            "::error file=app.js,line=1,endLine=1,col=5,endColumn=7,title=A title::Missing semicolon",
        );
        assert_eq!(
            a,
            Annotation {
                level: AnnotationLevel::Error,
                message: "Missing semicolon".into(),
                file: Some("app.js".into()),
                line: Some(1),
                end_line: Some(1),
                col: Some(5),
                end_column: Some(7),
                title: Some("A title".into()),
            }
        );
        assert_eq!(annotation_of("::warning::w").level, AnnotationLevel::Warning);
        assert_eq!(annotation_of("::notice::n").level, AnnotationLevel::Notice);
        assert_eq!(annotation_of("::error::").message, "");
    }

    #[test]
    fn names_and_keys_are_case_insensitive_and_keys_untrimmed() {
        let a = annotation_of("::ERROR FILE=a.rs,Line=3::m");
        assert_eq!((a.file.as_deref(), a.line), (Some("a.rs"), Some(3)));
        // `, line=3` has the key " line": not a line.
        let a = annotation_of("::error file=a.rs, line=3::m");
        assert_eq!(a.line, None);
        // Properties after the name are trimmed as a whole.
        let a = annotation_of("::error   file=a.rs  ::m");
        assert_eq!(a.file.as_deref(), Some("a.rs"));
    }

    #[test]
    fn leading_whitespace_and_data_with_colons() {
        let a = annotation_of("   \t::warning title=t::a::b::c");
        assert_eq!(a.message, "a::b::c");
        assert_eq!(a.title.as_deref(), Some("t"));
    }

    #[test]
    fn escapes_in_data_and_properties() {
        let a = annotation_of("::error title=a%3Ab%2Cc%0Ad%25::x%0Ay%0D%0Az%25 %3A %2C %250A");
        assert_eq!(a.title.as_deref(), Some("a:b,c\nd%"));
        // Data unescapes only CR, LF and %; `%250A` is a literal `%0A`.
        assert_eq!(a.message, "x\ny\r\nz% %3A %2C %0A");
    }

    #[test]
    fn property_items_as_dotnet_splits_them() {
        let a = annotation_of("::error title==x,file=,line,col=2=3::m");
        assert_eq!(a.title.as_deref(), Some("x"));
        assert_eq!(a.file, None);
        // `col=2=3` is not a number; and no line anyway.
        assert_eq!(a.col, None);
        let a = annotation_of("::error title=a=b,,title=c::m");
        assert_eq!(a.title.as_deref(), Some("c"), "the last duplicate wins");
        let a = annotation_of("::error title=a=b::m");
        assert_eq!(a.title.as_deref(), Some("a=b"));
    }

    #[test]
    fn lines_and_columns_corrected_as_github_does() {
        let a = annotation_of("::error endLine=4::m");
        assert_eq!((a.line, a.end_line), (Some(4), Some(4)));
        let a = annotation_of("::error line=2,endColumn=9::m");
        assert_eq!((a.col, a.end_column), (Some(9), Some(9)));
        let a = annotation_of("::error col=2,endColumn=3::m");
        assert_eq!((a.line, a.col, a.end_column), (None, None, None));
        let a = annotation_of("::error line=2,endLine=5,col=1,endColumn=3::m");
        assert_eq!((a.line, a.end_line, a.col, a.end_column), (Some(2), Some(5), None, None));
        let a = annotation_of("::error line=5,endLine=2::m");
        assert_eq!((a.line, a.end_line), (None, None));
        let a = annotation_of("::error line=5,col=7,endColumn=3::m");
        assert_eq!((a.line, a.col, a.end_column), (Some(5), None, None));
        let a = annotation_of("::error line=x,col=1::m");
        assert_eq!((a.line, a.col), (None, None));
    }

    #[test]
    fn annotation_log_lines_and_relative_file() {
        let p = parse("::error file=/w/repo/src/a.rs::first%0Asecond").unwrap();
        assert_eq!(p.log, ["##[error]first", "second"]);
        assert_eq!(p.annotations.len(), 1);
        let WorkflowCommand::Annotation(mut a) = p.command else { panic!() };
        a.relativize_file("/w/repo/");
        assert_eq!(a.file.as_deref(), Some("src/a.rs"));
        a.relativize_file("/elsewhere");
        assert_eq!(a.file.as_deref(), Some("src/a.rs"));
        let mut b = Annotation::new(AnnotationLevel::Notice, "m");
        b.file = Some("/w/repository/x".into());
        b.relativize_file("/w/repo");
        assert_eq!(b.file.as_deref(), Some("/w/repository/x"));
    }

    #[test]
    fn legacy_form_anywhere_in_the_line() {
        let a = annotation_of("prefix ##[warning file=a%3Bb.rs;line=3]msg%5D%3B");
        assert_eq!(a.file.as_deref(), Some("a;b.rs"));
        assert_eq!(a.line, Some(3));
        assert_eq!(a.message, "msg];");
        assert_eq!(command("##[group]Build"), Some(WorkflowCommand::Group("Build".into())));
        assert_eq!(command("##[endgroup]"), Some(WorkflowCommand::EndGroup));
    }

    #[test]
    fn mask_group_debug() {
        let p = parse("::add-mask::s3cret").unwrap();
        assert_eq!(p.command, WorkflowCommand::AddMask("s3cret".into()));
        assert!(p.log.is_empty(), "the value never reaches the log");
        let p = parse("::add-mask::  ").unwrap();
        assert_eq!(p.command, WorkflowCommand::Rejected("add-mask".into()));
        assert_eq!(p.annotations[0].level, AnnotationLevel::Warning);
        assert!(!p.fails_step);

        let p = parse("::group::Build it").unwrap();
        assert_eq!(p.command, WorkflowCommand::Group("Build it".into()));
        assert_eq!(p.log, ["##[group]Build it"]);
        assert_eq!(parse("::endgroup::").unwrap().log, ["##[endgroup]"]);

        let mut parser = CommandParser::new();
        let p = parser.parse_line("::debug::hmm").unwrap();
        assert_eq!(p.command, WorkflowCommand::Debug("hmm".into()));
        assert!(p.log.is_empty());
        parser.set_step_debug(true);
        assert!(parser.echo(), "step debug turns echo on");
        assert_eq!(parser.parse_line("::debug::a%0Ab").unwrap().log, ["##[debug]a", "##[debug]b"]);
    }

    #[test]
    fn set_output_and_save_state_work_with_a_deprecation_warning() {
        let p = parse("::set-output name=result::a%0Ab").unwrap();
        assert_eq!(p.command, WorkflowCommand::SetOutput { name: "result".into(), value: "a\nb".into() });
        assert_eq!(p.annotations.len(), 1);
        assert_eq!(p.annotations[0].level, AnnotationLevel::Warning);
        assert!(p.annotations[0].message.starts_with("The `set-output` command is deprecated"));
        assert!(p.log[0].starts_with("##[warning]The `set-output` command is deprecated"));
        assert!(!p.fails_step);
        let p = parse("::save-state name=pid::42").unwrap();
        assert_eq!(p.command, WorkflowCommand::SaveState { name: "pid".into(), value: "42".into() });
        let p = parse("::set-output::v").unwrap();
        assert_eq!(p.command, WorkflowCommand::Rejected("set-output".into()));
        assert!(p.fails_step);
        assert_eq!(p.annotations[2].message, "Required field 'name' is missing in ##[set-output] command.");
    }

    #[test]
    fn set_env_and_add_path_fail_unless_allowed() {
        let p = parse("::set-env name=A::b").unwrap();
        assert_eq!(p.command, WorkflowCommand::Rejected("set-env".into()));
        assert!(p.fails_step);
        assert_eq!(p.log[0], "##[error]Unable to process command '::set-env name=A::b' successfully.");
        assert!(p.log[1].starts_with("##[error]The `set-env` command is disabled."));
        assert!(parse("::add-path::/opt/bin").unwrap().fails_step);

        let mut parser = CommandParser::new();
        parser.set_allow_unsecure_commands(true);
        assert_eq!(
            parser.parse_line("::set-env name=A::b").unwrap().command,
            WorkflowCommand::SetEnv { name: "A".into(), value: "b".into() }
        );
        assert_eq!(
            parser.parse_line("::add-path::/opt/bin").unwrap().command,
            WorkflowCommand::AddPath("/opt/bin".into())
        );
        let p = parser.parse_line("::set-env name=node_options::x").unwrap();
        assert_eq!(p.command, WorkflowCommand::Rejected("set-env".into()));
        assert!(!p.fails_step);
        assert_eq!(p.annotations[0].level, AnnotationLevel::Error);
    }

    #[test]
    fn stop_and_resume() {
        let mut parser = CommandParser::new();
        let p = parser.parse_line("::stop-commands::pause-token-1").unwrap();
        assert_eq!(p.command, WorkflowCommand::StopCommands("pause-token-1".into()));
        assert_eq!(p.log, ["::stop-commands::pause-token-1"]);
        assert_eq!(parser.parse_line("::error::not now"), None);
        assert_eq!(parser.parse_line("::add-mask::x"), None);
        assert_eq!(parser.parse_line("##[group]x"), None);
        assert_eq!(parser.parse_line("::stop-commands::other"), None);
        let p = parser.parse_line("::PAUSE-TOKEN-1::").unwrap();
        assert_eq!(p.command, WorkflowCommand::ResumeCommands("pause-token-1".into()));
        assert_eq!(p.log, ["::PAUSE-TOKEN-1::"]);
        assert!(matches!(
            parser.parse_line("::error::again").unwrap().command,
            WorkflowCommand::Annotation(_)
        ));
        // The token is a command only while commands are stopped.
        assert_eq!(parser.parse_line("::pause-token-1::"), None);
    }

    #[test]
    fn stop_tokens_github_refuses() {
        for token in ["", "pause-logging", "error", "ADD-MASK", "stop-commands"] {
            let mut parser = CommandParser::new();
            let p = parser.parse_line(&format!("::stop-commands::{token}")).unwrap();
            assert!(p.fails_step, "{token:?}");
            assert_eq!(p.annotations.len(), 1);
            assert!(p.annotations[0].message.starts_with("You cannot use a endToken"));
            assert!(matches!(
                parser.parse_line("::error::still processed").unwrap().command,
                WorkflowCommand::Annotation(_)
            ));
        }
    }

    #[test]
    fn echo_shows_the_lines_of_echoed_commands() {
        let mut parser = CommandParser::new();
        assert!(!parser.echo());
        let p = parser.parse_line("::echo::on").unwrap();
        assert_eq!(p.command, WorkflowCommand::Echo(true));
        assert!(p.log.is_empty(), "echo was off when it came");
        assert!(parser.echo());
        assert_eq!(parser.parse_line("::group::g").unwrap().log, ["::group::g", "##[group]g"]);
        assert_eq!(parser.parse_line("::error::e").unwrap().log, ["##[error]e"]);
        assert_eq!(parser.parse_line("::add-mask::v").unwrap().log, ["::add-mask::***"]);
        assert_eq!(parser.parse_line(" ::echo::OFF ").unwrap().log, [" ::echo::OFF "]);
        assert!(!parser.echo());
        parser.parse_line("::echo::on").unwrap();
        let p = parser.parse_line("::echo::maybe").unwrap();
        assert!(p.fails_step);
        assert_eq!(p.log[0], "::echo::maybe", "echoed before its errors");
        assert_eq!(parser.parse_line("::add-mask:: ").unwrap().log.len(), 1, "never echoed");
        assert_eq!(
            p.annotations[1].message,
            "Invalid echo command value. Possible values can be: 'on', 'off'. Current value is: 'maybe'."
        );
    }

    #[test]
    fn a_step_keeps_ten_annotations_of_each_level() {
        let mut step = StepAnnotations::new();
        for i in 0..12 {
            step.add(Annotation::new(AnnotationLevel::Error, format!("e{i}")));
            step.add(Annotation::new(AnnotationLevel::Warning, format!("w{i}")));
        }
        step.add(Annotation::new(AnnotationLevel::Notice, "x".repeat(5000)));
        assert_eq!(step.count(AnnotationLevel::Error), 12);
        assert_eq!(step.count(AnnotationLevel::Notice), 1);
        let kept = step.into_kept();
        assert_eq!(kept.len(), 21);
        assert_eq!(kept.iter().filter(|a| a.level == AnnotationLevel::Error).count(), 10);
        assert_eq!(kept[19].message, "w9");
        assert_eq!(kept[20].message.len(), StepAnnotations::MESSAGE_LIMIT);
    }

    #[test]
    fn problem_matchers_are_not_applied_and_say_so() {
        let p = parse("::add-matcher::.github/matcher.json").unwrap();
        assert_eq!(p.command, WorkflowCommand::Ignored("add-matcher".into()));
        assert_eq!(p.annotations[0].level, AnnotationLevel::Warning);
        assert!(!p.fails_step);
        assert_eq!(
            command("::remove-matcher owner=eslint::"),
            Some(WorkflowCommand::Ignored("remove-matcher".into()))
        );
    }

    #[test]
    fn secrets_to_mask() {
        assert_eq!(command("::add-mask::v").unwrap().secret(), Some("v"));
        let mut parser = CommandParser::new();
        let p = parser.parse_line("::stop-commands::abcdefg").unwrap();
        assert_eq!(p.command.secret(), Some("abcdefg"));
        let mut parser = CommandParser::new();
        let p = parser.parse_line("::stop-commands::abcdef").unwrap();
        assert_eq!(p.command.secret(), None, "six characters are not masked");
        assert_eq!(command("::group::g").unwrap().secret(), None);
    }

    #[test]
    fn unsecure_stop_tokens_when_opted_in() {
        let mut parser = CommandParser::new();
        parser.set_allow_unsecure_stop_tokens(true);
        let p = parser.parse_line("::stop-commands::error").unwrap();
        assert_eq!(p.command, WorkflowCommand::StopCommands("error".into()));
        assert_eq!(parser.parse_line("::warning::w"), None);
        let p = parser.parse_line("::Error::").unwrap();
        assert_eq!(p.command, WorkflowCommand::ResumeCommands("error".into()));
        // An empty token stops for good.
        parser.parse_line("::stop-commands::").unwrap();
        assert_eq!(parser.parse_line("::::"), None);
        assert_eq!(parser.parse_line("::error::e"), None);
    }

    #[test]
    fn set_output_without_a_name_warns_then_fails() {
        let p = parse("::set-output::v").unwrap();
        let levels: Vec<_> = p.annotations.iter().map(|a| a.level).collect();
        assert_eq!(levels, [AnnotationLevel::Warning, AnnotationLevel::Error, AnnotationLevel::Error]);
        assert!(p.fails_step);
        assert_eq!(p.log.len(), 3);
    }
}
