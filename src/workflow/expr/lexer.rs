//! Tokens of an expression, lexed exactly as GitHub's lexer does: which characters end
//! a token, which lexemes are numbers (JavaScript's `Number()` grammar), and the
//! messages and positions (UTF-16 offsets, as JavaScript counts) of its errors.

use super::js;
use super::ExprError;

/// The longest expression GitHub accepts, in UTF-16 code units.
pub const MAX_EXPRESSION_LENGTH: usize = 21_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    LeftParen,
    RightParen,
    LeftBracket,
    RightBracket,
    Comma,
    Dot,
    Bang,
    BangEqual,
    EqualEqual,
    Greater,
    GreaterEqual,
    Less,
    LessEqual,
    And,
    Or,
    Star,
    Number,
    String,
    Identifier,
    True,
    False,
    Null,
    Eof,
}

#[derive(Debug, Clone)]
pub struct Token<'s> {
    pub kind: TokenKind,
    pub lexeme: &'s str,
    /// Offset of the first character, in UTF-16 code units from the start.
    pub offset: usize,
    /// Offset of the first character, in bytes.
    pub byte: usize,
    pub number: f64,
    /// The unescaped text of a string literal.
    pub string: Option<String>,
}

impl Token<'_> {
    /// How GitHub's error messages show a token.
    pub fn display(&self) -> &str {
        match self.kind {
            TokenKind::Eof => "EOF",
            TokenKind::String => self.string.as_deref().unwrap_or(""),
            _ => self.lexeme,
        }
    }
}

fn is_boundary(c: char) -> bool {
    matches!(c, '(' | '[' | ')' | ']' | ',' | '.' | '!' | '>' | '<' | '=' | '&' | '|')
        || js::is_js_whitespace(c)
}

fn is_legal_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

pub fn lex(input: &str) -> Result<Vec<Token<'_>>, ExprError> {
    if js::utf16_len(input) > MAX_EXPRESSION_LENGTH {
        return Err(ExprError::new(format!("Exceeded max expression length {MAX_EXPRESSION_LENGTH}"), None));
    }
    Lexer { input, pos: 0, utf16: 0, start: 0, start_utf16: 0, tokens: Vec::new() }.run()
}

struct Lexer<'s> {
    input: &'s str,
    pos: usize,
    utf16: usize,
    start: usize,
    start_utf16: usize,
    tokens: Vec<Token<'s>>,
}

impl<'s> Lexer<'s> {
    fn run(mut self) -> Result<Vec<Token<'s>>, ExprError> {
        while let Some(c) = self.peek() {
            self.start = self.pos;
            self.start_utf16 = self.utf16;
            self.advance(c);
            match c {
                '(' => self.add(TokenKind::LeftParen),
                ')' => self.add(TokenKind::RightParen),
                '[' => self.add(TokenKind::LeftBracket),
                ']' => self.add(TokenKind::RightBracket),
                ',' => self.add(TokenKind::Comma),
                '.' => {
                    if matches!(
                        self.previous(),
                        TokenKind::Identifier
                            | TokenKind::RightBracket
                            | TokenKind::RightParen
                            | TokenKind::Star
                    ) {
                        self.add(TokenKind::Dot)
                    } else {
                        self.number()?
                    }
                }
                '-' | '+' => self.number()?,
                '!' => {
                    let k = if self.matches('=') { TokenKind::BangEqual } else { TokenKind::Bang };
                    self.add(k)
                }
                '=' => {
                    if self.matches('=') {
                        self.add(TokenKind::EqualEqual)
                    } else {
                        self.identifier()?
                    }
                }
                '<' => {
                    let k = if self.matches('=') { TokenKind::LessEqual } else { TokenKind::Less };
                    self.add(k)
                }
                '>' => {
                    let k = if self.matches('=') { TokenKind::GreaterEqual } else { TokenKind::Greater };
                    self.add(k)
                }
                '&' => {
                    if self.matches('&') {
                        self.add(TokenKind::And)
                    } else {
                        self.identifier()?
                    }
                }
                '|' => {
                    if self.matches('|') {
                        self.add(TokenKind::Or)
                    } else {
                        self.identifier()?
                    }
                }
                '*' => self.add(TokenKind::Star),
                ' ' | '\r' | '\t' | '\n' => {}
                '\'' => self.string()?,
                c if c.is_ascii_digit() => self.number()?,
                _ => self.identifier()?,
            }
        }
        // As in GitHub's lexer, the end token is placed where the last token (or
        // whitespace) began, which is where "Unexpected symbol: 'EOF'" points.
        self.tokens.push(Token {
            kind: TokenKind::Eof,
            lexeme: "",
            offset: self.start_utf16,
            byte: self.start,
            number: 0.0,
            string: None,
        });
        Ok(self.tokens)
    }

    fn peek(&self) -> Option<char> {
        self.input[self.pos..].chars().next()
    }

    fn peek_next(&self) -> Option<char> {
        let mut it = self.input[self.pos..].chars();
        it.next();
        it.next()
    }

    fn advance(&mut self, c: char) {
        self.pos += c.len_utf8();
        self.utf16 += c.len_utf16();
    }

    fn matches(&mut self, expected: char) -> bool {
        if self.peek() == Some(expected) {
            self.advance(expected);
            true
        } else {
            false
        }
    }

    fn previous(&self) -> TokenKind {
        self.tokens.last().map_or(TokenKind::Eof, |t| t.kind)
    }

    fn lexeme(&self) -> &'s str {
        &self.input[self.start..self.pos]
    }

    fn add(&mut self, kind: TokenKind) {
        self.add_with(kind, 0.0, None)
    }

    fn add_with(&mut self, kind: TokenKind, number: f64, string: Option<String>) {
        self.tokens.push(Token {
            kind,
            lexeme: self.lexeme(),
            offset: self.start_utf16,
            byte: self.start,
            number,
            string,
        });
    }

    fn unexpected(&self, shown: &str) -> ExprError {
        ExprError::at(
            format!(
                "Unexpected symbol: '{shown}'. Located at position {} within expression: {}",
                self.start_utf16 + 1,
                self.input
            ),
            self.input,
            self.start,
        )
    }

    fn number(&mut self) -> Result<(), ExprError> {
        while let Some(c) = self.peek() {
            if is_boundary(c) && c != '.' {
                break;
            }
            self.advance(c);
        }
        let value = js::string_to_number(self.lexeme());
        if value.is_nan() {
            return Err(self.unexpected(self.lexeme()));
        }
        self.add_with(TokenKind::Number, value, None);
        Ok(())
    }

    fn string(&mut self) -> Result<(), ExprError> {
        loop {
            match self.peek() {
                None => return Err(self.unexpected(&self.input[self.start..])),
                Some('\'') if self.peek_next() != Some('\'') => break,
                Some('\'') => {
                    self.advance('\'');
                    self.advance('\'');
                }
                Some(c) => self.advance(c),
            }
        }
        self.advance('\'');
        let raw = &self.input[self.start + 1..self.pos - 1];
        // GitHub's lexer unescapes with JavaScript's `replace("''", "'")`, which replaces
        // only the first occurrence; the reference keeps that behaviour, and so do we.
        let value = raw.replacen("''", "'", 1);
        self.add_with(TokenKind::String, 0.0, Some(value));
        Ok(())
    }

    fn identifier(&mut self) -> Result<(), ExprError> {
        while let Some(c) = self.peek() {
            if is_boundary(c) {
                break;
            }
            self.advance(c);
        }
        let lexeme = self.lexeme();
        let mut kind = TokenKind::Identifier;
        let mut number = 0.0;
        if self.previous() != TokenKind::Dot {
            match lexeme {
                "true" => kind = TokenKind::True,
                "false" => kind = TokenKind::False,
                "null" => kind = TokenKind::Null,
                "NaN" => (kind, number) = (TokenKind::Number, f64::NAN),
                "Infinity" => (kind, number) = (TokenKind::Number, f64::INFINITY),
                _ => {}
            }
        }
        if !is_legal_identifier(lexeme) {
            return Err(self.unexpected(lexeme));
        }
        self.add_with(kind, number, None);
        Ok(())
    }
}
