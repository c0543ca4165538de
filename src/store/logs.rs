//! Job log files: one folder per job under `<data_dir>/logs`, each line written as
//! `2026-11-25T18:00:00.123Z <line>` (UTC, milliseconds).
//!
//! A job's log is capped (`[server] job_log_limit`) and keeps its tail. It is written in
//! segments named by the offset of their first byte in the whole log
//! (`00000000000000004096.log`); when the newest segment fills half the cap a new one
//! starts and all but the two newest are deleted. So at most the cap is kept, a reader
//! knows how many bytes were dropped (the oldest segment's offset), and an offset into
//! the log stays valid for a follower across rotations. Segments start and end on line
//! boundaries.
//!
//! One writer per job at a time (the runner holding its lease); any number of readers,
//! in this process or another, which only ever see complete lines.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Bytes buffered by [`JobLog::append`] before it writes them without waiting for a
/// [`JobLog::flush`].
const WRITE_BUFFER: usize = 64 * 1024;
/// Bytes a [`LogFollower`] reads per call, so one call never holds a whole log in memory.
const READ_CHUNK: u64 = 1024 * 1024;
/// The smallest cap honoured: a segment must hold at least a few lines.
const MIN_LIMIT: u64 = 1024;
/// Appended to a line cut because it alone would overflow a segment.
const CUT_MARK: &str = " [… line cut: longer than half the job log limit …]";

#[derive(Debug, thiserror::Error)]
#[error("job log {path}: {source}")]
pub struct LogError {
    pub path: PathBuf,
    pub source: io::Error,
}

fn at(path: &Path) -> impl FnOnce(io::Error) -> LogError + '_ {
    move |source| LogError { path: path.to_owned(), source }
}

/// The log files of all jobs; cheap to clone.
#[derive(Debug, Clone)]
pub struct JobLogs {
    root: PathBuf,
    limit: u64,
}

impl JobLogs {
    /// Logs in `root`, each capped at `limit` bytes (at least 1 KiB). Readers ignore the cap.
    pub fn new(root: impl Into<PathBuf>, limit: u64) -> JobLogs {
        JobLogs { root: root.into(), limit: limit.max(MIN_LIMIT) }
    }

    /// Logs in the `logs` folder of the server's data folder.
    pub fn in_data_dir(data_dir: &Path, limit: u64) -> JobLogs {
        JobLogs::new(data_dir.join("logs"), limit)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn job_dir(&self, job: i64) -> PathBuf {
        self.root.join(job.to_string())
    }

    /// The writer of a job's log, creating it, or continuing it after what is there (a
    /// job retried on another host keeps one log).
    pub fn open(&self, job: i64) -> Result<JobLog, LogError> {
        let dir = self.job_dir(job);
        fs::create_dir_all(&dir).map_err(at(&dir))?;
        let segments = segments(&dir)?;
        let (start, len) = match segments.last() {
            Some(&start) => {
                let path = segment_path(&dir, start);
                let len = fs::metadata(&path).map_err(at(&path))?.len();
                (start, len)
            }
            None => (0, 0),
        };
        let path = segment_path(&dir, start);
        let file = OpenOptions::new().create(true).append(true).open(&path).map_err(at(&path))?;
        let mut log = JobLog {
            dir,
            segment_limit: self.limit / 2,
            file,
            segment_start: start,
            segment_len: len,
            buffer: Vec::new(),
            stamp: (i64::MIN, String::new()),
        };
        // A writer that died mid-line left a partial line: end it, so what follows
        // starts on a line of its own.
        if len > 0 && !ends_with_newline(&path, len)? {
            log.buffer.push(b'\n');
        }
        Ok(log)
    }

    /// A job's whole log as it is now (complete lines), headed by a note of the bytes
    /// dropped to keep the tail. Empty when the job has written nothing.
    pub fn read_all(&self, job: i64) -> Result<String, LogError> {
        let mut follower = self.follow(job, 0);
        let mut text = String::new();
        loop {
            let lines = follower.next_lines()?;
            if lines.is_empty() {
                return Ok(text);
            }
            for line in lines {
                text.push_str(&line.text);
                text.push('\n');
            }
        }
    }

    /// A reader of the lines written from `offset` (a byte offset in the log; 0 is
    /// the start) onwards.
    pub fn follow(&self, job: i64, offset: u64) -> LogFollower {
        LogFollower { dir: self.job_dir(job), offset }
    }

    /// Deletes a job's log.
    pub fn remove(&self, job: i64) -> Result<(), LogError> {
        let dir = self.job_dir(job);
        match fs::remove_dir_all(&dir) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => Err(at(&dir)(err)),
            _ => Ok(()),
        }
    }
}

/// Writes one job's log. Lines are buffered; [`JobLog::flush`] makes them visible to
/// readers (the runner flushes after each chunk of a step's output). Dropping the
/// writer flushes too.
#[derive(Debug)]
pub struct JobLog {
    dir: PathBuf,
    segment_limit: u64,
    file: File,
    segment_start: u64,
    /// Bytes in the segment file, not counting the buffer.
    segment_len: u64,
    buffer: Vec<u8>,
    /// The last stamp written and its millisecond: output comes in bursts, and one
    /// formatting serves every line of a millisecond.
    stamp: (i64, String),
}

impl JobLog {
    /// Appends a line stamped with the current time. The caller has masked it. A text
    /// with line breaks is written as one line per part, all with the same stamp.
    pub fn append(&mut self, line: &str) -> Result<(), LogError> {
        let now = chrono::Utc::now();
        if now.timestamp_millis() != self.stamp.0 {
            self.stamp = (now.timestamp_millis(), now.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string());
        }
        let line = line.strip_suffix('\n').unwrap_or(line);
        for part in line.split('\n') {
            let part = part.strip_suffix('\r').unwrap_or(part);
            self.append_stamped(part)?;
        }
        if self.buffer.len() >= WRITE_BUFFER {
            self.flush()?;
        }
        Ok(())
    }

    fn append_stamped(&mut self, line: &str) -> Result<(), LogError> {
        let overhead = (self.stamp.1.len() + 2) as u64;
        let (line, cut) = if overhead + line.len() as u64 > self.segment_limit {
            let mut end = (self.segment_limit.saturating_sub(overhead + CUT_MARK.len() as u64)) as usize;
            while !line.is_char_boundary(end) {
                end -= 1;
            }
            (&line[..end], CUT_MARK)
        } else {
            (line, "")
        };
        let size = overhead + (line.len() + cut.len()) as u64;
        let used = self.segment_len + self.buffer.len() as u64;
        if used > 0 && used + size > self.segment_limit {
            self.rotate()?;
        }
        self.buffer.extend_from_slice(self.stamp.1.as_bytes());
        self.buffer.push(b' ');
        self.buffer.extend_from_slice(line.as_bytes());
        self.buffer.extend_from_slice(cut.as_bytes());
        self.buffer.push(b'\n');
        Ok(())
    }

    /// Writes the buffered lines to the file, where readers see them.
    pub fn flush(&mut self) -> Result<(), LogError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let path = segment_path(&self.dir, self.segment_start);
        self.file.write_all(&self.buffer).map_err(at(&path))?;
        self.segment_len += self.buffer.len() as u64;
        self.buffer.clear();
        Ok(())
    }

    /// Bytes written to the log so far, dropped ones included (the offset a
    /// [`LogFollower`] would continue from).
    pub fn len(&self) -> u64 {
        self.segment_start + self.segment_len + self.buffer.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Starts a new segment at the current end and deletes all but the two newest.
    fn rotate(&mut self) -> Result<(), LogError> {
        self.flush()?;
        let start = self.len();
        let path = segment_path(&self.dir, start);
        self.file = OpenOptions::new().create(true).append(true).open(&path).map_err(at(&path))?;
        self.segment_start = start;
        self.segment_len = 0;
        let segments = segments(&self.dir)?;
        for &old in segments.iter().rev().skip(2) {
            let path = segment_path(&self.dir, old);
            match fs::remove_file(&path) {
                Err(err) if err.kind() != io::ErrorKind::NotFound => return Err(at(&path)(err)),
                _ => {}
            }
        }
        Ok(())
    }
}

impl Drop for JobLog {
    fn drop(&mut self) {
        if let Err(err) = self.flush() {
            tracing::warn!(%err, "the end of a job log was lost");
        }
    }
}

/// A line of a log, as a follower reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// The line without its line break: `<UTC time> <text>`, or the note of dropped bytes.
    pub text: String,
    /// The offset just after it: where a follower resumes to read what follows.
    pub end: u64,
}

/// Reads a job's log from an offset on: each call returns the complete lines written
/// since the last (none when there is nothing new). Where the tail-keeping dropped
/// lines the follower had not read yet, it returns a line saying how many bytes.
#[derive(Debug, Clone)]
pub struct LogFollower {
    dir: PathBuf,
    offset: u64,
}

impl LogFollower {
    /// The offset of the next byte to read.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The complete lines written since the last call (at most about 1 MiB of them),
    /// without their line breaks.
    pub fn next_lines(&mut self) -> Result<Vec<LogLine>, LogError> {
        // The writer may delete the segment between the listing and the read: list again.
        for _ in 0..3 {
            match self.try_next_lines() {
                Err(err) if err.source.kind() == io::ErrorKind::NotFound => continue,
                result => return result,
            }
        }
        self.try_next_lines()
    }

    fn try_next_lines(&mut self) -> Result<Vec<LogLine>, LogError> {
        let segments = match segments(&self.dir) {
            Err(err) if err.source.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            result => result?,
        };
        let mut lines = Vec::new();
        let Some(&oldest) = segments.first() else { return Ok(lines) };
        // Moved on only once all is read: a failed read is tried again from the start.
        let mut offset = self.offset;
        if offset < oldest {
            lines.push(LogLine { text: dropped_note(oldest - offset), end: oldest });
            offset = oldest;
        }
        // The segment holding the offset: the last one starting at or before it.
        let first = segments.partition_point(|&start| start <= offset) - 1;
        let mut budget = READ_CHUNK;
        for (i, &start) in segments.iter().enumerate().skip(first) {
            let path = segment_path(&self.dir, start);
            let mut file = BufReader::new(File::open(&path).map_err(at(&path))?);
            file.seek(SeekFrom::Start(offset - start)).map_err(at(&path))?;
            let mut bytes = Vec::new();
            (&mut file).take(budget).read_to_end(&mut bytes).map_err(at(&path))?;
            if bytes.len() as u64 == budget && bytes.last() != Some(&b'\n') {
                // A line may be longer than one read: finish it.
                file.read_until(b'\n', &mut bytes).map_err(at(&path))?;
            }
            // Nothing after the last line break is complete yet.
            let Some(end) = bytes.iter().rposition(|&b| b == b'\n') else { break };
            for line in bytes[..=end].split_inclusive(|&b| b == b'\n') {
                offset += line.len() as u64;
                let text = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
                lines.push(LogLine { text, end: offset });
            }
            budget = budget.saturating_sub(end as u64 + 1);
            if budget == 0 || segments.get(i + 1) != Some(&offset) {
                break;
            }
        }
        self.offset = offset;
        Ok(lines)
    }
}

/// The line that stands for the bytes the cap dropped.
fn dropped_note(bytes: u64) -> String {
    format!("[… {bytes} bytes of earlier output dropped …]")
}

fn segment_path(dir: &Path, start: u64) -> PathBuf {
    dir.join(format!("{start:020}.log"))
}

/// The start offsets of a job's segments, oldest first.
fn segments(dir: &Path) -> Result<Vec<u64>, LogError> {
    let mut starts = Vec::new();
    for entry in fs::read_dir(dir).map_err(at(dir))? {
        let entry = entry.map_err(at(dir))?;
        let name = entry.file_name();
        if let Some(start) = name.to_str().and_then(|n| n.strip_suffix(".log")).and_then(|n| n.parse().ok()) {
            starts.push(start);
        }
    }
    starts.sort_unstable();
    Ok(starts)
}

fn ends_with_newline(path: &Path, len: u64) -> Result<bool, LogError> {
    let mut file = File::open(path).map_err(at(path))?;
    file.seek(SeekFrom::Start(len - 1)).map_err(at(path))?;
    let mut last = [0u8];
    file.read_exact(&mut last).map_err(at(path))?;
    Ok(last[0] == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_of(line: &str) -> &str {
        // `2026-11-25T18:00:00.123Z ` is 25 bytes.
        &line[25..]
    }

    #[test]
    fn lines_are_stamped_in_utc_with_milliseconds() {
        let dir = tempfile::tempdir().unwrap();
        let logs = JobLogs::new(dir.path(), 1 << 20);
        let mut log = logs.open(7).unwrap();
        log.append("hello").unwrap();
        log.flush().unwrap();
        let text = logs.read_all(7).unwrap();
        let re = regex::Regex::new(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z hello\n$").unwrap();
        assert!(re.is_match(&text), "{text:?}");
    }

    #[test]
    fn readers_see_lines_once_flushed() {
        let dir = tempfile::tempdir().unwrap();
        let logs = JobLogs::new(dir.path(), 1 << 20);
        assert_eq!(logs.read_all(1).unwrap(), "", "a job that never wrote has an empty log");
        let mut log = logs.open(1).unwrap();
        log.append("one").unwrap();
        assert_eq!(logs.read_all(1).unwrap(), "", "buffered until flushed");
        log.flush().unwrap();
        assert_eq!(logs.read_all(1).unwrap().lines().map(text_of).collect::<Vec<_>>(), ["one"]);
        drop(log);
        assert_eq!(logs.read_all(1).unwrap().lines().count(), 1);
    }

    #[test]
    fn line_breaks_in_a_text_make_lines_of_their_own() {
        let dir = tempfile::tempdir().unwrap();
        let logs = JobLogs::new(dir.path(), 1 << 20);
        let mut log = logs.open(1).unwrap();
        log.append("a\r\nb\nc\n").unwrap();
        log.append("").unwrap();
        drop(log);
        let text = logs.read_all(1).unwrap();
        assert_eq!(text.lines().map(text_of).collect::<Vec<_>>(), ["a", "b", "c", ""]);
    }

    #[test]
    fn a_follower_returns_only_new_complete_lines() {
        let dir = tempfile::tempdir().unwrap();
        let logs = JobLogs::new(dir.path(), 1 << 20);
        let mut follower = logs.follow(3, 0);
        assert!(follower.next_lines().unwrap().is_empty(), "no log yet");
        let mut log = logs.open(3).unwrap();
        log.append("first").unwrap();
        log.append("second").unwrap();
        log.flush().unwrap();
        let lines = follower.next_lines().unwrap();
        assert_eq!(lines.iter().map(|l| text_of(&l.text)).collect::<Vec<_>>(), ["first", "second"]);
        assert_eq!(lines[0].end, lines[0].text.len() as u64 + 1);
        assert_eq!(lines[1].end, log.len());
        assert!(follower.next_lines().unwrap().is_empty());
        assert_eq!(follower.offset(), log.len());
        // Resuming after a line reads what follows it.
        let again = logs.follow(3, lines[0].end).next_lines().unwrap();
        assert_eq!(again, lines[1..]);
        // Half a line (a writer that died mid-write) is not returned until complete.
        let path = segment_path(&dir.path().join("3"), 0);
        OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"2026-11-25T18:00:00.000Z par")
            .unwrap();
        assert!(follower.next_lines().unwrap().is_empty());
        drop(log);
        let mut log = logs.open(3).unwrap();
        log.append("third").unwrap();
        log.flush().unwrap();
        let lines = follower.next_lines().unwrap();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].text.ends_with(" par"), "the partial line was ended: {lines:?}");
        assert_eq!(text_of(&lines[1].text), "third");
    }

    #[test]
    fn the_cap_keeps_the_tail_and_says_what_was_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let limit = 4096;
        let logs = JobLogs::new(dir.path(), limit);
        let mut log = logs.open(9).unwrap();
        let mut follower = logs.follow(9, 0);
        let mut followed = Vec::new();
        for n in 0..1000 {
            log.append(&format!("line {n:04}")).unwrap();
            if n % 7 == 0 {
                log.flush().unwrap();
                followed.extend(follower.next_lines().unwrap());
            }
        }
        log.flush().unwrap();
        followed.extend(follower.next_lines().unwrap());
        let written = log.len();
        assert_eq!(written, 1000 * 35, "every line counted, dropped or not");

        let stored: u64 =
            fs::read_dir(dir.path().join("9")).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
        assert!(stored <= limit, "{stored} bytes kept, cap {limit}");
        assert!(stored >= limit / 2 - 35, "{stored} bytes kept: about half the cap at least");

        let text = logs.read_all(9).unwrap();
        let mut lines = text.lines();
        let note = lines.next().unwrap();
        let dropped = written - stored;
        assert_eq!(note, format!("[… {dropped} bytes of earlier output dropped …]"));
        let rest: Vec<&str> = lines.map(text_of).collect();
        assert_eq!(rest.last(), Some(&"line 0999"));
        let first: usize = rest[0].strip_prefix("line ").unwrap().parse().unwrap();
        let expected: Vec<String> = (first..1000).map(|n| format!("line {n:04}")).collect();
        assert_eq!(rest, expected, "the tail, whole and in order");

        // A follower that kept up saw every line, in order, nothing dropped.
        assert_eq!(followed.len(), 1000);
        assert!(followed.iter().enumerate().all(|(n, l)| text_of(&l.text) == format!("line {n:04}")));
        assert!(followed.windows(2).all(|w| w[1].end == w[0].end + 35));
    }

    #[test]
    fn a_slow_follower_is_told_what_it_missed() {
        let dir = tempfile::tempdir().unwrap();
        let logs = JobLogs::new(dir.path(), 2048);
        let mut log = logs.open(2).unwrap();
        log.append("early").unwrap();
        log.flush().unwrap();
        let mut follower = logs.follow(2, 0);
        assert_eq!(follower.next_lines().unwrap().len(), 1);
        let from = follower.offset();
        for n in 0..200 {
            log.append(&format!("later {n}")).unwrap();
        }
        log.flush().unwrap();
        let lines = follower.next_lines().unwrap();
        let stored: u64 =
            fs::read_dir(dir.path().join("2")).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
        let oldest = log.len() - stored;
        let note = LogLine {
            text: format!("[… {} bytes of earlier output dropped …]", oldest - from),
            end: oldest,
        };
        assert_eq!(lines[0], note);
        assert_eq!(lines.last().map(|l| text_of(&l.text)), Some("later 199"));
        assert_eq!(follower.offset(), log.len());
    }

    #[test]
    fn a_line_longer_than_half_the_cap_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let logs = JobLogs::new(dir.path(), 2048);
        let mut log = logs.open(4).unwrap();
        log.append(&"é".repeat(3000)).unwrap();
        log.append("after").unwrap();
        drop(log);
        let text = logs.read_all(4).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].len() <= 1024 && lines[0].ends_with(CUT_MARK), "{}", lines[0].len());
        assert_eq!(text_of(lines.last().unwrap()), "after");
    }

    #[test]
    fn a_line_longer_than_one_read_is_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let logs = JobLogs::new(dir.path(), 16 << 20);
        let mut log = logs.open(6).unwrap();
        let long = "x".repeat(3 * READ_CHUNK as usize);
        log.append("short").unwrap();
        log.append(&long).unwrap();
        log.append("after").unwrap();
        drop(log);
        let mut follower = logs.follow(6, 0);
        let mut lines = Vec::new();
        for _ in 0..10 {
            lines.extend(follower.next_lines().unwrap().into_iter().map(|l| l.text[25..].to_owned()));
        }
        assert_eq!(lines, ["short".to_owned(), long, "after".to_owned()]);
    }

    #[test]
    fn a_reopened_log_continues_where_it_ended() {
        let dir = tempfile::tempdir().unwrap();
        let logs = JobLogs::new(dir.path(), 1 << 20);
        let mut log = logs.open(5).unwrap();
        log.append("on host a").unwrap();
        drop(log);
        let mut log = logs.open(5).unwrap();
        log.append("retried on host b").unwrap();
        drop(log);
        let text = logs.read_all(5).unwrap();
        assert_eq!(text.lines().map(text_of).collect::<Vec<_>>(), ["on host a", "retried on host b"]);
        logs.remove(5).unwrap();
        assert_eq!(logs.read_all(5).unwrap(), "");
        logs.remove(5).unwrap();
    }
}
