//! A step's output stream cut into lines as GitHub's runner reads it (.NET's
//! `StreamReader.ReadLine`): a line ends at `\n`, `\r\n` or a lone `\r` (so each
//! redraw of a progress bar is a line), and is decoded as UTF-8 with invalid bytes
//! replaced by U+FFFD. Chunks may split a line or a `\r\n` anywhere.
//!
//! A line longer than the limit is cut into pieces of about the limit (at a character
//! boundary), so memory per stream is bounded whatever a step prints. Lines are masked
//! a piece at a time, so a cut never splits a secret: it moves to the secret's start
//! (the [`Masker`] says where), and a line still coming is cut only once the bytes
//! that could complete a secret across the cut are in.

use super::mask::Masker;

/// The longest line kept whole by default.
pub const MAX_LINE: usize = 1024 * 1024;

/// Bytes in, complete lines out.
#[derive(Debug, Clone)]
pub struct LineBuffer {
    /// The current line so far.
    pending: Vec<u8>,
    /// The last chunk ended with `\r`: a `\n` starting the next one belongs to it.
    after_cr: bool,
    max_line: usize,
}

impl Default for LineBuffer {
    fn default() -> Self {
        Self::with_max_line(MAX_LINE)
    }
}

impl LineBuffer {
    pub fn new() -> Self {
        Self::default()
    }

    /// A buffer that cuts lines longer than `max_line` bytes (at least 4).
    pub fn with_max_line(max_line: usize) -> Self {
        LineBuffer { pending: Vec::new(), after_cr: false, max_line: max_line.max(4) }
    }

    /// Takes a chunk of output; returns the lines it completes, without line breaks.
    /// `secrets` are the ones a cut must not split.
    pub fn push(&mut self, mut bytes: &[u8], secrets: &Masker) -> Vec<String> {
        let mut lines = Vec::new();
        if bytes.is_empty() {
            return lines;
        }
        if std::mem::take(&mut self.after_cr) && bytes[0] == b'\n' {
            bytes = &bytes[1..];
        }
        while let Some(i) = bytes.iter().position(|&b| b == b'\n' || b == b'\r') {
            self.pending.extend_from_slice(&bytes[..i]);
            self.cut(&mut lines, secrets, true);
            lines.push(String::from_utf8_lossy(&self.pending).into_owned());
            self.pending.clear();
            bytes = match (bytes[i], bytes.get(i + 1)) {
                (b'\r', Some(b'\n')) => &bytes[i + 2..],
                (b'\r', None) => {
                    self.after_cr = true;
                    &[]
                }
                _ => &bytes[i + 1..],
            };
        }
        self.pending.extend_from_slice(bytes);
        self.cut(&mut lines, secrets, false);
        lines
    }

    /// The last line when the output did not end with a line break.
    pub fn finish(&mut self) -> Option<String> {
        self.after_cr = false;
        if self.pending.is_empty() {
            return None;
        }
        let line = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        Some(line)
    }

    /// Emits pieces from the front of the pending line while it is over the limit; when
    /// the line is not `complete`, only while the bytes past a cut are there to see
    /// whether it would split a secret.
    fn cut(&mut self, lines: &mut Vec<String>, secrets: &Masker, complete: bool) {
        let keep = if complete { 0 } else { secrets.lookahead() };
        let mut start = 0;
        while self.pending.len() - start > self.max_line + keep {
            let mut end = start + self.max_line;
            // Back up to a character boundary (at most 3 continuation bytes).
            while end > start + 1 && (self.pending[end] & 0b1100_0000) == 0b1000_0000 {
                end -= 1;
            }
            end = start + secrets.cut_point(&self.pending[start..], end - start);
            lines.push(String::from_utf8_lossy(&self.pending[start..end]).into_owned());
            start = end;
        }
        self.pending.drain(..start);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// All lines of `chunks`, fed one after the other, then finished.
    fn split(buffer: &mut LineBuffer, chunks: &[&[u8]]) -> Vec<String> {
        split_around(buffer, chunks, &Masker::new())
    }

    fn split_around(buffer: &mut LineBuffer, chunks: &[&[u8]], secrets: &Masker) -> Vec<String> {
        let mut lines: Vec<String> = chunks.iter().flat_map(|c| buffer.push(c, secrets)).collect();
        lines.extend(buffer.finish());
        lines
    }

    #[test]
    fn line_breaks_as_dotnet_reads_them() {
        let mut b = LineBuffer::new();
        assert_eq!(split(&mut b, &[b"a\nb\r\nc\rd\n\ne"]), ["a", "b", "c", "d", "", "e"]);
        assert_eq!(split(&mut b, &[b"x\n"]), ["x"]);
        assert_eq!(split(&mut b, &[b"\r\r\n"]), ["", ""]);
        assert_eq!(split(&mut b, &[b""]), Vec::<String>::new());
    }

    #[test]
    fn chunks_split_anywhere() {
        let text = "first\r\nsecond\rthird\nпривет ✓\r\n\nlast".as_bytes();
        let expected = ["first", "second", "third", "привет ✓", "", "last"];
        for cut in 0..text.len() {
            let mut b = LineBuffer::new();
            assert_eq!(split(&mut b, &[&text[..cut], &text[cut..]]), expected, "cut at {cut}");
        }
        let mut b = LineBuffer::new();
        let bytes: Vec<&[u8]> = text.chunks(1).collect();
        assert_eq!(split(&mut b, &bytes), expected);
    }

    #[test]
    fn crlf_split_across_chunks_with_empty_chunk_between() {
        let mut b = LineBuffer::new();
        assert_eq!(b.push(b"a\r", &Masker::new()), ["a"]);
        assert!(b.push(b"", &Masker::new()).is_empty());
        assert!(b.push(b"\n", &Masker::new()).is_empty());
        assert_eq!(b.push(b"b\n", &Masker::new()), ["b"]);
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        let mut b = LineBuffer::new();
        assert_eq!(split(&mut b, &[b"ok \xff\xfe end\n"]), ["ok \u{fffd}\u{fffd} end"]);
    }

    #[test]
    fn long_lines_are_cut_at_character_boundaries() {
        let mut b = LineBuffer::with_max_line(8);
        assert_eq!(split(&mut b, &[b"0123456789abcdefXYZ\n"]), ["01234567", "89abcdef", "XYZ"]);
        // Pending output never grows past the limit, even without a line break.
        assert_eq!(b.push(b"0123456789", &Masker::new()), ["01234567"]);
        assert_eq!(b.finish().as_deref(), Some("89"));
        // "ж" is two bytes: a piece never ends inside it.
        let mut b = LineBuffer::with_max_line(5);
        let lines = split(&mut b, &["жжжжж".as_bytes(), b"\n"]);
        assert_eq!(lines, ["жж", "жж", "ж"]);
        assert!(lines.iter().all(|l| !l.contains('\u{fffd}')));
    }

    #[test]
    fn a_cut_never_splits_a_secret() {
        let mut secrets = Masker::new();
        secrets.add("SECRET");
        // Wherever the secret falls around the cut, one piece holds it whole, and
        // nothing is lost or repeated.
        for offset in 0..12 {
            let line = format!("{}SECRET{}", "B".repeat(16 - offset), "C".repeat(5));
            for chunk in [1, 3, line.len() + 1] {
                let mut b = LineBuffer::with_max_line(16);
                let mut with_break = line.clone().into_bytes();
                with_break.push(b'\n');
                let chunks: Vec<&[u8]> = with_break.chunks(chunk).collect();
                let pieces = split_around(&mut b, &chunks, &secrets);
                assert_eq!(pieces.concat(), line, "offset {offset}, chunks of {chunk}");
                assert!(pieces.iter().any(|p| p.contains("SECRET")), "offset {offset}: {pieces:?}");
                assert!(pieces.iter().all(|p| p.len() <= 16 + 5), "offset {offset}: {pieces:?}");
            }
        }
        // A line still coming keeps the secret's length minus one past the limit, no more.
        let mut b = LineBuffer::with_max_line(16);
        assert!(b.push(&[b'B'; 16], &secrets).is_empty());
        assert!(b.push(&[b'B'; 7], &secrets).is_empty(), "within the look-ahead");
        assert_eq!(b.push(b"B", &secrets), ["B".repeat(16)]);
    }
}
