//! Tokens to a tree, as GitHub's parser builds it: its precedence, its nesting limit
//! (counted the same way, so the same expressions are too deep), and its rule that
//! only a context, a call or a parenthesised expression can be indexed.

use super::lexer::{Token, TokenKind};
use super::{js, Allowed, ExprError, Value};

/// GitHub's limit on nesting.
pub const MAX_PARSER_DEPTH: usize = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

/// A function an expression can call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Func {
    Contains,
    StartsWith,
    EndsWith,
    Format,
    Join,
    ToJson,
    FromJson,
    Case,
    Success,
    Failure,
    Always,
    Cancelled,
    HashFiles,
    /// An extra function the place allows but this evaluator does not implement.
    Other(String),
}

impl Func {
    pub fn is_status(&self) -> bool {
        matches!(self, Func::Success | Func::Failure | Func::Always | Func::Cancelled)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Literal(Value),
    /// A named context, as written.
    Context(String),
    /// `x.name`: a property by its (identifier) name.
    Property(Box<Node>, String),
    /// `x[index]`.
    Index(Box<Node>, Box<Node>),
    /// `x.*` or `x[*]`.
    Star(Box<Node>),
    Not(Box<Node>),
    Cmp(CmpOp, Box<Node>, Box<Node>),
    And(Vec<Node>),
    Or(Vec<Node>),
    Call(Func, Vec<Node>),
}

/// Built-in functions: name (lower-case), minimum and maximum argument counts.
const BUILTINS: &[(&str, usize, usize, Func)] = &[
    ("case", 3, usize::MAX, Func::Case),
    ("contains", 2, 2, Func::Contains),
    ("endswith", 2, 2, Func::EndsWith),
    ("format", 1, 255, Func::Format),
    ("fromjson", 1, 1, Func::FromJson),
    ("join", 1, 2, Func::Join),
    ("startswith", 2, 2, Func::StartsWith),
    ("tojson", 1, 1, Func::ToJson),
];

pub fn parse(input: &str, tokens: &[Token<'_>], allowed: &Allowed<'_>) -> Result<Option<Node>, ExprError> {
    let mut p = Parser { input, tokens, pos: 0, depth: 0, allowed };
    if p.at_end() {
        return Ok(None);
    }
    let node = p.expression()?;
    if !p.at_end() {
        return Err(p.error("Unexpected symbol", p.peek()));
    }
    Ok(Some(node))
}

struct Parser<'t, 's, 'a> {
    input: &'s str,
    tokens: &'t [Token<'s>],
    pos: usize,
    depth: usize,
    allowed: &'a Allowed<'a>,
}

impl<'t, 's> Parser<'t, 's, '_> {
    fn peek(&self) -> &'t Token<'s> {
        &self.tokens[self.pos]
    }

    fn previous(&self) -> &'t Token<'s> {
        &self.tokens[self.pos - 1]
    }

    fn at_end(&self) -> bool {
        self.peek().kind == TokenKind::Eof
    }

    fn check(&self, kind: TokenKind) -> bool {
        !self.at_end() && self.peek().kind == kind
    }

    fn matches(&mut self, kind: TokenKind) -> bool {
        if self.check(kind) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn error(&self, what: &str, tok: &Token<'_>) -> ExprError {
        ExprError::at(
            format!(
                "{what}: '{}'. Located at position {} within expression: {}",
                tok.display(),
                tok.offset + 1,
                self.input
            ),
            self.input,
            tok.byte,
        )
    }

    fn incr_depth(&mut self) -> Result<(), ExprError> {
        self.depth += 1;
        if self.depth > MAX_PARSER_DEPTH {
            return Err(self.error(&format!("Exceeded max expression depth {MAX_PARSER_DEPTH}"), self.peek()));
        }
        Ok(())
    }

    fn expression(&mut self) -> Result<Node, ExprError> {
        self.incr_depth()?;
        let r = self.logical_or();
        self.depth -= 1;
        r
    }

    fn logical_or(&mut self) -> Result<Node, ExprError> {
        let first = self.logical_and()?;
        if !self.check(TokenKind::Or) {
            return Ok(first);
        }
        self.incr_depth()?;
        let mut args = vec![first];
        while self.matches(TokenKind::Or) {
            args.push(self.logical_and()?);
        }
        self.depth -= 1;
        Ok(Node::Or(args))
    }

    fn logical_and(&mut self) -> Result<Node, ExprError> {
        let first = self.equality()?;
        if !self.check(TokenKind::And) {
            return Ok(first);
        }
        self.incr_depth()?;
        let mut args = vec![first];
        while self.matches(TokenKind::And) {
            args.push(self.equality()?);
        }
        self.depth -= 1;
        Ok(Node::And(args))
    }

    fn equality(&mut self) -> Result<Node, ExprError> {
        let mut expr = self.comparison()?;
        loop {
            let op = if self.matches(TokenKind::BangEqual) {
                CmpOp::Ne
            } else if self.matches(TokenKind::EqualEqual) {
                CmpOp::Eq
            } else {
                return Ok(expr);
            };
            let right = self.comparison()?;
            expr = Node::Cmp(op, Box::new(expr), Box::new(right));
        }
    }

    fn comparison(&mut self) -> Result<Node, ExprError> {
        let mut expr = self.unary()?;
        loop {
            let op = if self.matches(TokenKind::Greater) {
                CmpOp::Gt
            } else if self.matches(TokenKind::GreaterEqual) {
                CmpOp::Ge
            } else if self.matches(TokenKind::Less) {
                CmpOp::Lt
            } else if self.matches(TokenKind::LessEqual) {
                CmpOp::Le
            } else {
                return Ok(expr);
            };
            let right = self.unary()?;
            expr = Node::Cmp(op, Box::new(expr), Box::new(right));
        }
    }

    fn unary(&mut self) -> Result<Node, ExprError> {
        if self.matches(TokenKind::Bang) {
            self.incr_depth()?;
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(Node::Not(Box::new(inner)));
        }
        self.index()
    }

    fn index(&mut self) -> Result<Node, ExprError> {
        let (mut expr, indexable) = self.call()?;
        if !indexable {
            return Ok(expr);
        }
        let mut increased = 0;
        loop {
            if self.matches(TokenKind::LeftBracket) {
                let star = self.matches(TokenKind::Star);
                let index = if star { None } else { Some(self.expression()?) };
                if !self.check(TokenKind::RightBracket) {
                    return Err(self.error("Unexpected symbol", self.peek()));
                }
                self.pos += 1;
                self.incr_depth()?;
                increased += 1;
                expr = match index {
                    None => Node::Star(Box::new(expr)),
                    Some(i) => Node::Index(Box::new(expr), Box::new(i)),
                };
            } else if self.matches(TokenKind::Dot) {
                self.incr_depth()?;
                increased += 1;
                if self.matches(TokenKind::Identifier) {
                    expr = Node::Property(Box::new(expr), self.previous().lexeme.to_string());
                } else if self.matches(TokenKind::Star) {
                    expr = Node::Star(Box::new(expr));
                } else {
                    return Err(self.error("Unexpected symbol", self.peek()));
                }
            } else {
                break;
            }
        }
        self.depth -= increased;
        Ok(expr)
    }

    /// A call or a context (both indexable), or else a primary (not indexable unless
    /// it is a parenthesised expression).
    fn call(&mut self) -> Result<(Node, bool), ExprError> {
        if !self.check(TokenKind::Identifier) {
            return self.primary();
        }
        self.pos += 1;
        let ident = self.previous();
        if !self.matches(TokenKind::LeftParen) {
            let name = ident.lexeme;
            if !self.allowed.contexts.iter().any(|c| js::lower_eq(c, name)) {
                return Err(self.error("Unrecognized named-value", ident));
            }
            return Ok((Node::Context(name.to_string()), true));
        }
        let mut args = Vec::new();
        while !self.matches(TokenKind::RightParen) {
            args.push(self.expression()?);
            if !self.check(TokenKind::RightParen) {
                if !self.check(TokenKind::Comma) {
                    return Err(self.error("Unexpected symbol", self.peek()));
                }
                self.pos += 1;
            }
        }
        let func = self.resolve_function(ident, args.len())?;
        Ok((Node::Call(func, args), true))
    }

    fn resolve_function(&self, ident: &Token<'_>, argc: usize) -> Result<Func, ExprError> {
        let name = ident.lexeme;
        let (min, max, func) =
            if let Some((_, min, max, f)) = BUILTINS.iter().find(|(n, ..)| n.eq_ignore_ascii_case(name)) {
                (*min, *max, f.clone())
            } else if let Some(sig) = self.allowed.functions.iter().find(|f| js::lower_eq(f.name, name)) {
                let func = match sig.name.to_ascii_lowercase().as_str() {
                    "success" => Func::Success,
                    "failure" => Func::Failure,
                    "always" => Func::Always,
                    "cancelled" => Func::Cancelled,
                    "hashfiles" => Func::HashFiles,
                    _ => Func::Other(sig.name.to_string()),
                };
                (sig.min_args, sig.max_args, func)
            } else {
                return Err(self.error("Unrecognized function", ident));
            };
        if argc < min {
            return Err(self.error("Too few parameters supplied", ident));
        }
        if argc > max {
            return Err(self.error("Too many parameters supplied", ident));
        }
        if func == Func::Case && argc % 2 == 0 {
            return Err(
                self.error("Even number of parameters supplied, requires an odd number of parameters", ident)
            );
        }
        Ok(func)
    }

    fn primary(&mut self) -> Result<(Node, bool), ExprError> {
        if self.at_end() {
            return Err(self.error("Unexpected end of expression", self.previous()));
        }
        let tok = self.peek();
        let node = match tok.kind {
            TokenKind::False => Node::Literal(Value::Bool(false)),
            TokenKind::True => Node::Literal(Value::Bool(true)),
            TokenKind::Null => Node::Literal(Value::Null),
            TokenKind::Number => Node::Literal(Value::Number(tok.number)),
            TokenKind::String => Node::Literal(Value::String(tok.string.clone().unwrap_or_default())),
            TokenKind::LeftParen => {
                self.pos += 1;
                let inner = self.expression()?;
                if self.at_end() {
                    return Err(self.error("Unexpected end of expression", self.previous()));
                }
                if !self.check(TokenKind::RightParen) {
                    return Err(self.error("Unexpected symbol", self.peek()));
                }
                self.pos += 1;
                return Ok((inner, true));
            }
            _ => return Err(self.error("Unexpected symbol", tok)),
        };
        self.pos += 1;
        Ok((node, false))
    }
}
