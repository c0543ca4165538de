//! The evaluator. Values read from the contexts or from the expression's literals are
//! borrowed, never copied, so a typical `if:` condition evaluates without allocating.
//! Borrowing also gives arrays and objects the identity GitHub's evaluator compares
//! them by (`github.event == github.event` is true, `fromJSON('{}') == fromJSON('{}')`
//! is not).

use std::borrow::Cow;

use indexmap::IndexMap;

use super::js;
use super::parser::{CmpOp, Func, Node};
use super::{EvalContext, ExprError, JobStatus, Value};

/// GitHub's runner refuses an evaluation whose live intermediate results exceed this
/// many bytes (its strings count 2 bytes a character).
pub const MAX_MEMORY_BYTES: usize = 1024 * 1024;
const STRING_OVERHEAD: usize = 26;

/// A value during evaluation.
#[derive(Debug, Clone)]
pub(crate) enum Val<'a> {
    Null,
    Bool(bool),
    Num(f64),
    Str(Cow<'a, str>),
    /// An array or object borrowed from the contexts.
    Ref(&'a Value),
    /// An array or object made during evaluation (by `fromJSON`).
    Own(Box<Value>),
    /// The result of `.*`: a new array whose indexing applies to each element.
    Filtered(Vec<Val<'a>>),
}

impl<'a> Val<'a> {
    pub fn borrowed(v: &'a Value) -> Val<'a> {
        match v {
            Value::Null => Val::Null,
            Value::Bool(b) => Val::Bool(*b),
            Value::Number(n) => Val::Num(*n),
            Value::String(s) => Val::Str(Cow::Borrowed(s)),
            Value::Array(_) | Value::Object(_) => Val::Ref(v),
        }
    }

    pub fn owned(v: Value) -> Val<'a> {
        match v {
            Value::Null => Val::Null,
            Value::Bool(b) => Val::Bool(b),
            Value::Number(n) => Val::Num(n),
            Value::String(s) => Val::Str(Cow::Owned(s)),
            v => Val::Own(Box::new(v)),
        }
    }

    pub fn into_value(self) -> Value {
        match self {
            Val::Null => Value::Null,
            Val::Bool(b) => Value::Bool(b),
            Val::Num(n) => Value::Number(n),
            Val::Str(s) => Value::String(s.into_owned()),
            Val::Ref(v) => v.clone(),
            Val::Own(v) => *v,
            Val::Filtered(items) => Value::Array(items.into_iter().map(Val::into_value).collect()),
        }
    }

    fn is_primitive(&self) -> bool {
        matches!(self, Val::Null | Val::Bool(_) | Val::Num(_) | Val::Str(_))
    }

    fn is_array(&self) -> bool {
        match self {
            Val::Filtered(_) | Val::Ref(Value::Array(_)) => true,
            Val::Own(v) => matches!(**v, Value::Array(_)),
            _ => false,
        }
    }

    pub fn is_falsy(&self) -> bool {
        match self {
            Val::Null => true,
            Val::Bool(b) => !b,
            Val::Num(n) => *n == 0.0 || n.is_nan(),
            Val::Str(s) => s.is_empty(),
            _ => false,
        }
    }

    /// `number()` of GitHub's data types.
    fn number(&self) -> f64 {
        match self {
            Val::Null => 0.0,
            Val::Bool(b) => f64::from(u8::from(*b)),
            Val::Num(n) => *n,
            Val::Str(s) => js::string_to_number(s),
            _ => f64::NAN,
        }
    }

    pub fn coerce_string(&self) -> Cow<'_, str> {
        match self {
            Val::Null => Cow::Borrowed(""),
            Val::Bool(true) => Cow::Borrowed("true"),
            Val::Bool(false) => Cow::Borrowed("false"),
            Val::Num(n) => Cow::Owned(js::number_coerce_string(*n)),
            Val::Str(s) => Cow::Borrowed(s),
            Val::Ref(Value::Object(_)) => Cow::Borrowed("Object"),
            Val::Own(v) if matches!(**v, Value::Object(_)) => Cow::Borrowed("Object"),
            _ => Cow::Borrowed("Array"),
        }
    }

    /// Bytes GitHub's runner would count for this value.
    fn memory(&self) -> usize {
        match self {
            Val::Str(s) => STRING_OVERHEAD + 2 * s.len(),
            _ => 0,
        }
    }

    fn array_items(&self) -> Vec<Val<'_>> {
        match self {
            Val::Filtered(items) => items.iter().map(Val::reborrow).collect(),
            Val::Ref(Value::Array(items)) => items.iter().map(Val::borrowed).collect(),
            Val::Own(v) => match &**v {
                Value::Array(items) => items.iter().map(Val::borrowed).collect(),
                _ => Vec::new(),
            },
            _ => Vec::new(),
        }
    }

    fn reborrow(&self) -> Val<'_> {
        match self {
            Val::Null => Val::Null,
            Val::Bool(b) => Val::Bool(*b),
            Val::Num(n) => Val::Num(*n),
            Val::Str(s) => Val::Str(Cow::Borrowed(s)),
            Val::Ref(v) => Val::Ref(v),
            Val::Own(v) => Val::Ref(v),
            Val::Filtered(items) => Val::Filtered(items.iter().map(Val::reborrow).collect()),
        }
    }

    /// JSON.stringify with the evaluator's replacer.
    fn write_json(&self, out: &mut String, indent: &str, level: usize) {
        match self {
            Val::Null => out.push_str("null"),
            Val::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Val::Num(n) => js::write_json_number(out, *n),
            Val::Str(s) => js::write_json_string(out, s),
            Val::Ref(v) => js::write_json(out, v, indent, level),
            Val::Own(v) => js::write_json(out, v, indent, level),
            Val::Filtered(items) => js::write_seq(
                out,
                items.iter(),
                indent,
                level,
                |out, v, l| v.write_json(out, indent, l),
                '[',
                ']',
            ),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Null,
    Bool,
    Num,
    Str,
    Array,
    Object,
}

fn kind(v: &Val<'_>) -> Kind {
    match v {
        Val::Null => Kind::Null,
        Val::Bool(_) => Kind::Bool,
        Val::Num(_) => Kind::Num,
        Val::Str(_) => Kind::Str,
        Val::Ref(Value::Object(_)) => Kind::Object,
        Val::Own(v) if matches!(**v, Value::Object(_)) => Kind::Object,
        _ => Kind::Array,
    }
}

/// Operands after GitHub's coercion (JavaScript's loose equality, minus objects):
/// numbers when the kinds differ and one side is a number, boolean or null.
enum Coerced<'v> {
    Nums(f64, f64),
    Strs(&'v str, &'v str),
    Bools(bool, bool),
    Nulls,
    Same(&'v Val<'v>, &'v Val<'v>),
    Mismatch,
}

fn coerce<'v>(l: &'v Val<'v>, r: &'v Val<'v>) -> Coerced<'v> {
    let (lk, rk) = (kind(l), kind(r));
    if lk == rk {
        return match (l, r) {
            (Val::Num(a), Val::Num(b)) => Coerced::Nums(*a, *b),
            (Val::Str(a), Val::Str(b)) => Coerced::Strs(a, b),
            (Val::Bool(a), Val::Bool(b)) => Coerced::Bools(*a, *b),
            (Val::Null, Val::Null) => Coerced::Nulls,
            _ => Coerced::Same(l, r),
        };
    }
    let numeric = |k| matches!(k, Kind::Num | Kind::Str | Kind::Bool | Kind::Null);
    let to_num_ok = match (lk, rk) {
        (Kind::Num, Kind::Str) | (Kind::Str, Kind::Num) => true,
        (Kind::Null | Kind::Bool, k) | (k, Kind::Null | Kind::Bool) => numeric(k),
        _ => false,
    };
    if to_num_ok {
        Coerced::Nums(l.number(), r.number())
    } else {
        Coerced::Mismatch
    }
}

fn same_object(l: &Val<'_>, r: &Val<'_>) -> bool {
    match (l, r) {
        (Val::Ref(a), Val::Ref(b)) => std::ptr::eq(*a, *b),
        _ => false,
    }
}

pub(crate) fn equals(l: &Val<'_>, r: &Val<'_>) -> bool {
    match coerce(l, r) {
        Coerced::Nums(a, b) => a == b,
        Coerced::Strs(a, b) => js::eq_ignore_case(a, b),
        Coerced::Bools(a, b) => a == b,
        Coerced::Nulls => true,
        Coerced::Same(a, b) => same_object(a, b),
        Coerced::Mismatch => false,
    }
}

fn greater_than(l: &Val<'_>, r: &Val<'_>) -> bool {
    match coerce(l, r) {
        Coerced::Nums(a, b) => a > b,
        Coerced::Strs(a, b) => js::cmp_ignore_case(a, b).is_gt(),
        Coerced::Bools(a, b) => a && !b,
        _ => false,
    }
}

fn less_than(l: &Val<'_>, r: &Val<'_>) -> bool {
    match coerce(l, r) {
        Coerced::Nums(a, b) => a < b,
        Coerced::Strs(a, b) => js::cmp_ignore_case(a, b).is_lt(),
        Coerced::Bools(a, b) => !a && b,
        _ => false,
    }
}

/// An index, as GitHub's `idxHelper` reads it: the string form of a primitive, and a
/// non-negative integer when the value converts to a finite number.
enum Idx<'i> {
    Star,
    Key { name: Option<Cow<'i, str>>, int: Option<f64> },
}

impl<'i> Idx<'i> {
    fn of(v: &'i Val<'i>) -> Idx<'i> {
        let name = v.is_primitive().then(|| v.coerce_string());
        let f = v.number();
        let int = (f.is_finite() && f >= 0.0).then(|| f.floor());
        Idx::Key { name, int }
    }

    fn property(name: &'i str) -> Idx<'i> {
        // An identifier is never a finite number ("Infinity" is not finite).
        Idx::Key { name: Some(Cow::Borrowed(name)), int: None }
    }
}

fn lookup<'m>(map: &'m IndexMap<String, Value>, key: &str) -> Option<&'m Value> {
    // Contexts and most objects are small: comparing keys beats hashing one.
    let exact = if map.len() <= 32 {
        map.iter().find(|(k, _)| k.as_str() == key).map(|(_, v)| v)
    } else {
        map.get(key)
    };
    exact.or_else(|| map.iter().find(|(k, _)| js::lower_eq(k, key)).map(|(_, v)| v))
}

fn take_key(map: &mut IndexMap<String, Value>, key: &str) -> Option<Value> {
    let i = map.get_index_of(key).or_else(|| map.keys().position(|k| js::lower_eq(k, key)))?;
    map.swap_remove_index(i).map(|(_, v)| v)
}

fn array_slot(len: usize, int: Option<f64>) -> Option<usize> {
    int.filter(|i| *i < len as f64).map(|i| i as usize)
}

/// `obj[idx]`, as GitHub's evaluator indexes arrays, objects, filtered arrays and
/// everything else (null, or an empty filtered array for `*`).
fn access<'a>(obj: Val<'a>, idx: &Idx<'_>) -> Val<'a> {
    match obj {
        Val::Filtered(items) => {
            let mut out = Vec::new();
            for item in items {
                match (item, idx) {
                    (Val::Ref(Value::Object(map)), Idx::Star) => out.extend(map.values().map(Val::borrowed)),
                    (Val::Ref(Value::Object(map)), Idx::Key { name: Some(n), .. }) => {
                        out.extend(lookup(map, n).map(Val::borrowed))
                    }
                    (Val::Ref(Value::Array(a)), Idx::Star) => out.extend(a.iter().map(Val::borrowed)),
                    (Val::Ref(Value::Array(a)), Idx::Key { int, .. }) => {
                        out.extend(array_slot(a.len(), *int).map(|i| Val::borrowed(&a[i])))
                    }
                    (Val::Own(owned), idx) => match (*owned, idx) {
                        (Value::Object(map), Idx::Star) => out.extend(map.into_values().map(Val::owned)),
                        (Value::Object(mut map), Idx::Key { name: Some(n), .. }) => {
                            out.extend(take_key(&mut map, n).map(Val::owned))
                        }
                        (Value::Array(a), Idx::Star) => out.extend(a.into_iter().map(Val::owned)),
                        (Value::Array(mut a), Idx::Key { int, .. }) => {
                            out.extend(array_slot(a.len(), *int).map(|i| Val::owned(a.swap_remove(i))))
                        }
                        _ => {}
                    },
                    (Val::Filtered(inner), Idx::Star) => out.extend(inner),
                    (Val::Filtered(inner), Idx::Key { int, .. }) => {
                        if let Some(i) = array_slot(inner.len(), *int) {
                            out.extend(inner.into_iter().nth(i))
                        }
                    }
                    _ => {}
                }
            }
            Val::Filtered(out)
        }
        Val::Ref(Value::Array(items)) => match idx {
            Idx::Star => Val::Filtered(items.iter().map(Val::borrowed).collect()),
            Idx::Key { int, .. } => {
                array_slot(items.len(), *int).map_or(Val::Null, |i| Val::borrowed(&items[i]))
            }
        },
        Val::Ref(Value::Object(map)) => match idx {
            Idx::Star => Val::Filtered(map.values().map(Val::borrowed).collect()),
            Idx::Key { name: Some(name), .. } => lookup(map, name).map_or(Val::Null, Val::borrowed),
            Idx::Key { name: None, .. } => Val::Null,
        },
        Val::Own(owned) => match (*owned, idx) {
            (Value::Array(items), Idx::Star) => Val::Filtered(items.into_iter().map(Val::owned).collect()),
            (Value::Array(mut items), Idx::Key { int, .. }) => {
                array_slot(items.len(), *int).map_or(Val::Null, |i| Val::owned(items.swap_remove(i)))
            }
            (Value::Object(map), Idx::Star) => Val::Filtered(map.into_values().map(Val::owned).collect()),
            (Value::Object(mut map), Idx::Key { name: Some(name), .. }) => {
                take_key(&mut map, name).map_or(Val::Null, Val::owned)
            }
            _ => Val::Null,
        },
        _ => match idx {
            Idx::Star => Val::Filtered(Vec::new()),
            Idx::Key { .. } => Val::Null,
        },
    }
}

pub(crate) struct Evaluator<'a, 'c> {
    pub cx: &'c EvalContext<'a>,
    /// Bytes of the intermediate results alive in the calls being evaluated.
    live: usize,
}

fn memory_error() -> ExprError {
    ExprError::new("The maximum allowed memory size was exceeded", None)
}

fn eval_error(message: impl Into<String>) -> ExprError {
    ExprError::new(message, None)
}

impl<'a, 'c> Evaluator<'a, 'c> {
    pub fn new(cx: &'c EvalContext<'a>) -> Self {
        Evaluator { cx, live: 0 }
    }

    pub fn eval(&mut self, node: &'a Node) -> Result<Val<'a>, ExprError> {
        Ok(match node {
            Node::Literal(v) => Val::borrowed(v),
            Node::Context(name) => {
                let contexts = self.cx.contexts;
                lookup(contexts, name).map_or(Val::Null, Val::borrowed)
            }
            Node::Property(obj, name) => {
                let obj = self.eval(obj)?;
                access(obj, &Idx::property(name))
            }
            Node::Index(obj, index) => {
                // GitHub evaluates the index before the object.
                let index = self.eval(index).map_err(|e| {
                    eval_error(format!("could not evaluate index for index access: {}", e.message))
                })?;
                let obj = self.eval(obj)?;
                access(obj, &Idx::of(&index))
            }
            Node::Star(obj) => {
                let obj = self.eval(obj)?;
                access(obj, &Idx::Star)
            }
            Node::Not(inner) => Val::Bool(self.eval(inner)?.is_falsy()),
            Node::Cmp(op, l, r) => {
                let l = self.eval(l)?;
                let r = self.eval(r)?;
                Val::Bool(match op {
                    CmpOp::Eq => equals(&l, &r),
                    CmpOp::Ne => !equals(&l, &r),
                    CmpOp::Gt => greater_than(&l, &r),
                    CmpOp::Ge => equals(&l, &r) || greater_than(&l, &r),
                    CmpOp::Lt => less_than(&l, &r),
                    CmpOp::Le => equals(&l, &r) || less_than(&l, &r),
                })
            }
            Node::And(args) => {
                let mut result = Val::Null;
                for arg in args {
                    result = self.eval(arg)?;
                    if result.is_falsy() {
                        break;
                    }
                }
                result
            }
            Node::Or(args) => {
                let mut result = Val::Null;
                for arg in args {
                    result = self.eval(arg)?;
                    if !result.is_falsy() {
                        break;
                    }
                }
                result
            }
            Node::Call(func, args) => self.call(func, args)?,
        })
    }

    fn call(&mut self, func: &Func, arg_nodes: &'a [Node]) -> Result<Val<'a>, ExprError> {
        // Status functions first: the hot path of `if:` conditions.
        match func {
            Func::Success => return Ok(Val::Bool(self.cx.status == JobStatus::Success)),
            Func::Failure => return Ok(Val::Bool(self.cx.status == JobStatus::Failure)),
            Func::Cancelled => return Ok(Val::Bool(self.cx.status == JobStatus::Cancelled)),
            Func::Always => return Ok(Val::Bool(true)),
            _ => {}
        }
        let base = self.live;
        // The two-argument string tests are the common case in `if:` conditions: no
        // argument vector for them.
        if let (Func::Contains | Func::StartsWith | Func::EndsWith, [l, r]) = (func, arg_nodes) {
            let l = self.eval_arg(l, base)?;
            let r = self.eval_arg(r, base)?;
            self.live = base;
            return Ok(Val::Bool(match func {
                Func::Contains => contains(&l, &r),
                Func::StartsWith => {
                    l.is_primitive()
                        && r.is_primitive()
                        && js::starts_with_ignore_case(&l.coerce_string(), &r.coerce_string())
                }
                _ => {
                    l.is_primitive()
                        && r.is_primitive()
                        && js::ends_with_ignore_case(&l.coerce_string(), &r.coerce_string())
                }
            }));
        }
        let mut args: Vec<Val<'a>> = Vec::with_capacity(arg_nodes.len());
        for node in arg_nodes {
            let v = self.eval(node)?;
            self.live += v.memory();
            if self.live > MAX_MEMORY_BYTES {
                self.live = base;
                return Err(memory_error());
            }
            args.push(v);
        }
        self.live = base;
        let result = call_function(func, args, self.cx)?;
        if base + result.memory() > MAX_MEMORY_BYTES {
            return Err(memory_error());
        }
        Ok(result)
    }
}

impl<'a> Evaluator<'a, '_> {
    /// One argument of a call, counted against the memory limit until the call ends.
    fn eval_arg(&mut self, node: &'a Node, base: usize) -> Result<Val<'a>, ExprError> {
        let v = self.eval(node)?;
        self.live += v.memory();
        if self.live > MAX_MEMORY_BYTES {
            self.live = base;
            return Err(memory_error());
        }
        Ok(v)
    }
}

fn contains(l: &Val<'_>, r: &Val<'_>) -> bool {
    if l.is_primitive() {
        r.is_primitive() && js::contains_ignore_case(&l.coerce_string(), &r.coerce_string())
    } else if l.is_array() {
        l.array_items().iter().any(|v| equals(r, v))
    } else {
        false
    }
}

fn call_function<'a>(
    func: &Func,
    mut args: Vec<Val<'a>>,
    cx: &EvalContext<'_>,
) -> Result<Val<'a>, ExprError> {
    Ok(match func {
        Func::Contains => Val::Bool(contains(&args[0], &args[1])),
        Func::StartsWith | Func::EndsWith => {
            let (l, r) = (&args[0], &args[1]);
            Val::Bool(
                l.is_primitive()
                    && r.is_primitive()
                    && if *func == Func::StartsWith {
                        js::starts_with_ignore_case(&l.coerce_string(), &r.coerce_string())
                    } else {
                        js::ends_with_ignore_case(&l.coerce_string(), &r.coerce_string())
                    },
            )
        }
        Func::Format => Val::Str(Cow::Owned(format(&args)?)),
        Func::Join => {
            let first = &args[0];
            Val::Str(Cow::Owned(if first.is_primitive() {
                first.coerce_string().into_owned()
            } else if first.is_array() {
                let sep = match args.get(1) {
                    Some(s) if s.is_primitive() => s.coerce_string(),
                    _ => Cow::Borrowed(","),
                };
                let mut out = String::new();
                for (i, item) in first.array_items().iter().enumerate() {
                    if i > 0 {
                        out.push_str(&sep);
                    }
                    out.push_str(&item.coerce_string());
                }
                out
            } else {
                String::new()
            }))
        }
        Func::ToJson => {
            let mut out = String::new();
            args[0].write_json(&mut out, "  ", 0);
            Val::Str(Cow::Owned(out))
        }
        Func::FromJson => {
            let text = args[0].coerce_string();
            if js::js_trim(&text).is_empty() {
                return Err(eval_error("empty input"));
            }
            let v = js::parse_json(&text)
                .map_err(|_| eval_error("Error parsing JSON when evaluating fromJson"))?;
            Val::owned(v)
        }
        Func::Case => {
            let n = args.len();
            let mut chosen = n - 1;
            for i in (0..n - 1).step_by(2) {
                match args[i] {
                    Val::Bool(true) => {
                        chosen = i + 1;
                        break;
                    }
                    Val::Bool(false) => {}
                    _ => return Err(eval_error("case predicate must evaluate to a boolean value")),
                }
            }
            args.swap_remove(chosen)
        }
        Func::HashFiles => {
            let patterns: Vec<String> = args.iter().map(|a| a.coerce_string().into_owned()).collect();
            let hasher =
                cx.files.ok_or_else(|| eval_error("hashFiles is not available here: no workspace"))?;
            let hash = hasher.hash_files(&patterns).map_err(|e| eval_error(format!("hashFiles: {e}")))?;
            Val::Str(Cow::Owned(hash))
        }
        Func::Success | Func::Failure | Func::Always | Func::Cancelled => unreachable!("handled in call"),
        Func::Other(name) => return Err(eval_error(format!("The function '{name}' is not available here"))),
    })
}

/// `format(fmt, args…)`: `{N}` placeholders, `{{`/`}}` escapes, exactly as GitHub's.
fn format(args: &[Val<'_>]) -> Result<String, ExprError> {
    let fs = args[0].coerce_string();
    let fs: &str = &fs;
    let b = fs.as_bytes();
    let invalid = || eval_error(format!("The following format string is invalid: {fs}"));
    let find = |c: u8, from: usize| b[from..].iter().position(|x| *x == c).map(|p| p + from);
    let mut out = String::with_capacity(fs.len());
    let mut index = 0;
    while index < b.len() {
        let lbrace = find(b'{', index);
        let rbrace = find(b'}', index);
        match (lbrace, rbrace) {
            (Some(l), r) if r.is_none_or(|r| r > l) => {
                if b.get(l + 1) == Some(&b'{') {
                    out.push_str(&fs[index..=l]);
                    index = l + 2;
                    continue;
                }
                if let Some(r) = r.filter(|r| *r > l + 1) {
                    let digits = b[l + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
                    if digits > 0 {
                        let arg: f64 = fs[l + 1..l + 1 + digits].parse().unwrap_or(f64::INFINITY);
                        if 1.0 + arg > (args.len() - 1) as f64 {
                            return Err(eval_error(format!(
                                "The following format string references more arguments than were supplied: {fs}"
                            )));
                        }
                        out.push_str(&fs[index..l]);
                        out.push_str(&args[1 + arg as usize].coerce_string());
                        index = r + 1;
                        continue;
                    }
                }
                return Err(invalid());
            }
            (_, Some(r)) => {
                if b.get(r + 1) == Some(&b'}') {
                    out.push_str(&fs[index..=r]);
                    index = r + 2;
                } else {
                    return Err(invalid());
                }
            }
            _ => {
                out.push_str(&fs[index..]);
                break;
            }
        }
    }
    Ok(out)
}
