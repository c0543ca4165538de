//! Job output on a person's terminal. A step prints what it likes; a terminal obeys
//! control sequences (set the window title, write to the clipboard through OSC 52,
//! move the cursor to overwrite what was shown, hyperlinks that hide their target), so
//! job output printed to a terminal keeps only its colours (SGR): every other escape
//! sequence is dropped and other control characters are shown in caret notation.
//! Output to a file or a pipe is left as the job wrote it.

use std::borrow::Cow;
use std::io::IsTerminal;

const ESC: char = '\u{1b}';
const BEL: char = '\u{7}';

/// Whether standard output is a terminal (so job output must be made safe for it).
pub fn stdout_is_terminal() -> bool {
    std::io::stdout().is_terminal()
}

/// `text` as job output may be shown on a terminal: SGR colour sequences kept, every
/// other escape sequence removed, other control characters (but tab and newline)
/// written as `^X`, and C1 controls (which some terminals obey too) as U+FFFD.
pub fn for_terminal(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c.is_control() && c != '\t' && c != '\n') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ESC => match chars.peek() {
                Some('[') => {
                    chars.next();
                    let mut sequence = String::from("\u{1b}[");
                    // Parameter and intermediate bytes, then one final byte (0x40–0x7E).
                    let mut end = None;
                    for c in chars.by_ref() {
                        if ('\u{40}'..='\u{7e}').contains(&c) {
                            end = Some(c);
                            break;
                        }
                        if !('\u{20}'..='\u{3f}').contains(&c) {
                            break; // not a CSI sequence after all: drop what was read
                        }
                        sequence.push(c);
                    }
                    let is_colour = sequence[2..].chars().all(|c| c.is_ascii_digit() || c == ';' || c == ':');
                    if end == Some('m') && is_colour {
                        out.push_str(&sequence);
                        out.push('m');
                    }
                }
                // OSC, DCS, SOS, PM, APC: a string up to BEL or ST (ESC \).
                Some(']' | 'P' | 'X' | '^' | '_') => {
                    chars.next();
                    while let Some(c) = chars.next() {
                        if c == BEL || (c == ESC && chars.next_if_eq(&'\\').is_some()) {
                            break;
                        }
                    }
                }
                // Any other escape: ESC and the character after it.
                Some(_) => {
                    chars.next();
                }
                None => {}
            },
            '\t' | '\n' => out.push(c),
            c if (c as u32) < 0x20 => {
                out.push('^');
                out.push((c as u8 + b'@') as char);
            }
            '\u{7f}' => out.push_str("^?"),
            c if c.is_control() => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_stay() {
        let text = "\u{1b}[1;31mred\u{1b}[0m and \u{1b}[38:5:208mplain\u{1b}[m";
        assert_eq!(for_terminal(text), text);
        assert!(matches!(for_terminal("plain\ttext"), Cow::Borrowed(_)));
    }

    #[test]
    fn other_sequences_are_dropped() {
        // Window title (OSC 0, BEL), clipboard (OSC 52, ST), a hyperlink, cursor moves,
        // clearing the screen, a DCS string, a lone ESC at the end.
        let cases = [
            ("a\u{1b}]0;pwned\u{7}b", "ab"),
            ("a\u{1b}]52;c;cm0gLXJmIH4=\u{1b}\\b", "ab"),
            ("\u{1b}]8;;http://evil\u{1b}\\link\u{1b}]8;;\u{1b}\\", "link"),
            ("x\u{1b}[2Ay\u{1b}[1;1Hz\u{1b}[2J", "xyz"),
            ("\u{1b}[?1049hz", "z"),
            ("\u{1b}P+q544e\u{1b}\\ok", "ok"),
            ("\u{1b}cok\u{1b}", "ok"),
            ("\u{1b}]0;never terminated", ""),
        ];
        for (text, shown) in cases {
            assert_eq!(for_terminal(text), shown, "{text:?}");
        }
    }

    #[test]
    fn control_characters_are_shown_not_obeyed() {
        assert_eq!(for_terminal("secret\u{8}\u{8}\u{8}\u{8}\u{8}\u{8}shown"), "secret^H^H^H^H^H^Hshown");
        assert_eq!(for_terminal("bell\u{7} cr\r del\u{7f}"), "bell^G cr^M del^?");
        assert_eq!(for_terminal("c1 csi \u{9b}2J"), "c1 csi \u{fffd}2J");
    }
}
