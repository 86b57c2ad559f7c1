//! CloudWatch Logs filter patterns (metric filters, subscription filters, FilterLogEvents):
//! the three syntaxes AWS documents, parsed once and matched against each event.
//!
//! - **Text**: terms (`ERROR`), quoted phrases (`"INTERNAL SERVER ERROR"`), all of which must
//!   appear; `?term`s of which one must; `-term`s of which none may; `%regex%` terms. A term
//!   matches a whole word: `ERROR` is in `[ERROR 400]`, not in `ERRORS` (a regex term matches
//!   anywhere). An empty pattern, `""` or `" "` matches every event.
//! - **JSON**: `{ $.a.b[0] = "x*" && ($.n > 5 || $.f IS TRUE) }` with `= != > < >= <=`,
//!   `*` wildcards and `%regex%` values, `IS NULL|TRUE|FALSE`, `NOT EXISTS`, `&&` binding
//!   tighter than `||`, parentheses; a selector that reaches an object or an array never
//!   matches a comparison.
//! - **Space-delimited**: `[ip, user, ..., status_code = 4* || status_code = 5*, bytes > 1000]`;
//!   an event's fields are split on spaces, `"..."` and `[...]` each one field; `...` stands for
//!   any number of fields; a field's conditions may name other fields.
//!
//! Metric values and dimensions read fields of a matched event: `$.latency` (JSON) or
//! `$status_code` (space-delimited), through [`Matched::field`].

use fancy_regex::Regex;
use serde_json::Value as Json;

/// A pattern that does not parse: AWS answers InvalidParameterException.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("Invalid filter pattern: {0}")]
pub struct PatternError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, PatternError> {
    Err(PatternError(msg.into()))
}

/// How many regex terms one pattern may hold (AWS: 2 per JSON or delimited pattern; we apply
/// the limit to every pattern).
const MAX_REGEX: usize = 2;
/// Patterns are at most 1,024 characters (the API's limit).
pub const MAX_PATTERN_LEN: usize = 1024;
/// Bound on the work of matching `...` fields (backtracking steps per event).
const MAX_STEPS: usize = 10_000;

/// A parsed filter pattern.
#[derive(Debug)]
pub struct FilterPattern {
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    All,
    Text { all: Vec<Term>, any: Vec<Term>, none: Vec<Term> },
    Json(Expr<Selector>),
    Delimited { fields: Vec<Field>, condition: Option<Expr<String>> },
}

#[derive(Debug)]
enum Term {
    Word(String),
    Regex(Regex),
}

/// A boolean expression over conditions on `S` (a JSON selector or a field name).
#[derive(Debug)]
enum Expr<S> {
    Or(Vec<Expr<S>>),
    And(Vec<Expr<S>>),
    Cond(S, Test),
}

#[derive(Debug)]
enum Test {
    Cmp(Op, Operand),
    IsNull,
    IsTrue,
    IsFalse,
    NotExists,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug)]
enum Operand {
    /// A string, `*` a wildcard.
    Glob(String),
    Number(f64, String),
    Regex(Regex),
}

#[derive(Debug)]
enum Field {
    Named(String),
    Ellipsis,
}

#[derive(Clone, Debug, PartialEq)]
enum Seg {
    Key(String),
    Index(usize),
    Any,
}

/// `$.a.b[0]`, `$.['cluster.name']`, `$.list[*].id`.
#[derive(Clone, Debug, PartialEq)]
pub struct Selector(Vec<Seg>);

/// An event that matched, from which metric values and dimensions read fields.
#[derive(Debug)]
pub enum Matched {
    Text,
    Json(Json),
    Fields(Vec<(String, String)>),
}

impl Matched {
    /// The value of `$.path` (JSON) or `$name` (space-delimited) in the event, as text;
    /// `None` when the event has no such field or it is an object or an array.
    pub fn field(&self, selector: &str) -> Option<String> {
        match self {
            Matched::Json(doc) => {
                let sel = Selector::parse(selector).ok()?;
                let v = sel.resolve(doc).into_iter().next()?;
                scalar_text(v)
            }
            Matched::Fields(fields) => {
                let name = selector.strip_prefix('$')?;
                fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
            }
            Matched::Text => None,
        }
    }
}

fn scalar_text(v: &Json) -> Option<String> {
    match v {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        Json::Bool(b) => Some(b.to_string()),
        Json::Null => Some("null".into()),
        _ => None,
    }
}

impl FilterPattern {
    pub fn parse(pattern: &str) -> Result<FilterPattern, PatternError> {
        if pattern.len() > MAX_PATTERN_LEN {
            return err(format!("the pattern is longer than {MAX_PATTERN_LEN} characters"));
        }
        let p = pattern.trim();
        let kind = if p.starts_with('{') {
            let inner = p
                .strip_suffix('}')
                .and_then(|s| s.strip_prefix('{'))
                .ok_or_else(|| PatternError("a JSON pattern must end with }".into()))?;
            let tokens = tokenize(inner, true)?;
            let mut parser = Parser { tokens, pos: 0, regexes: 0 };
            let expr = parser.expr(&|p: &mut Parser| p.json_cond())?;
            parser.end()?;
            Kind::Json(expr)
        } else if p.starts_with('[') {
            delimited(p)?
        } else {
            text(p)?
        };
        Ok(FilterPattern { kind })
    }

    /// Whether the pattern matches every event.
    pub fn is_all(&self) -> bool {
        matches!(self.kind, Kind::All)
    }

    pub fn matches(&self, message: &str) -> bool {
        self.evaluate(message).is_some()
    }

    /// `Some` (with the event's fields) when `message` matches.
    pub fn evaluate(&self, message: &str) -> Option<Matched> {
        match &self.kind {
            Kind::All => Some(Matched::Text),
            Kind::Text { all, any, none } => {
                let ok = all.iter().all(|t| t.found(message))
                    && (any.is_empty() || any.iter().any(|t| t.found(message)))
                    && !none.iter().any(|t| t.found(message));
                ok.then_some(Matched::Text)
            }
            Kind::Json(expr) => {
                let doc: Json = serde_json::from_str(message.trim()).ok()?;
                if !doc.is_object() && !doc.is_array() {
                    return None;
                }
                expr.eval(&|sel: &Selector, test: &Test| json_test(&doc, sel, test))
                    .then_some(Matched::Json(doc))
            }
            Kind::Delimited { fields, condition } => {
                let values = split_fields(message);
                let mut steps = 0;
                let mut bound = Vec::new();
                bind(fields, &values, &mut bound, &mut steps, condition.as_ref())
                    .then(|| Matched::Fields(bound))
            }
        }
    }
}

// ---- text patterns ----

fn text(p: &str) -> Result<Kind, PatternError> {
    let mut all = Vec::new();
    let mut any = Vec::new();
    let mut none = Vec::new();
    let mut regexes = 0;
    let chars: Vec<char> = p.chars().collect();
    let mut i = 0;
    let mut only_blank = true;
    while i < chars.len() {
        if chars[i].is_whitespace() {
            i += 1;
            continue;
        }
        let list = match chars[i] {
            '?' => {
                i += 1;
                &mut any
            }
            '-' if chars.get(i + 1).is_some_and(|c| !c.is_whitespace()) => {
                i += 1;
                &mut none
            }
            _ => &mut all,
        };
        let term = match chars.get(i) {
            Some('"') => {
                let (s, next) = quoted(&chars, i)?;
                i = next;
                if s.trim().is_empty() {
                    continue;
                }
                Term::Word(s)
            }
            Some('%') => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|c| *c == '%')
                    .ok_or_else(|| PatternError("a regular expression must end with %".into()))?;
                let body: String = chars[i + 1..i + 1 + end].iter().collect();
                i += end + 2;
                regexes += 1;
                Term::Regex(regex(&body)?)
            }
            _ => {
                let start = i;
                while i < chars.len() && !chars[i].is_whitespace() {
                    i += 1;
                }
                Term::Word(chars[start..i].iter().collect())
            }
        };
        only_blank = false;
        list.push(term);
    }
    if regexes > MAX_REGEX {
        return err(format!("at most {MAX_REGEX} regular expressions are allowed in a pattern"));
    }
    if only_blank {
        return Ok(Kind::All);
    }
    Ok(Kind::Text { all, any, none })
}

/// A `"..."` starting at `chars[i]`, with `\"` and `\\` escapes; returns the text and the
/// index after the closing quote.
fn quoted(chars: &[char], i: usize) -> Result<(String, usize), PatternError> {
    let mut s = String::new();
    let mut j = i + 1;
    while j < chars.len() {
        match chars[j] {
            '\\' if j + 1 < chars.len() => {
                s.push(chars[j + 1]);
                j += 2;
            }
            '"' => return Ok((s, j + 1)),
            c => {
                s.push(c);
                j += 1;
            }
        }
    }
    err("a quoted term has no closing quote")
}

fn regex(body: &str) -> Result<Regex, PatternError> {
    if body.contains('(') || body.contains(')') {
        return err("parentheses are not supported in regular expressions");
    }
    Regex::new(body).map_err(|e| PatternError(format!("invalid regular expression: {e}")))
}

impl Term {
    fn found(&self, message: &str) -> bool {
        match self {
            Term::Regex(r) => r.is_match(message).unwrap_or(false),
            Term::Word(w) => contains_word(message, w),
        }
    }
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric()
}

/// Whether `needle` occurs in `hay` with no word character glued to its word-character ends.
fn contains_word(hay: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return true;
    }
    let first_word = needle.chars().next().is_some_and(is_word);
    let last_word = needle.chars().next_back().is_some_and(is_word);
    let mut from = 0;
    while let Some(pos) = hay[from..].find(needle) {
        let start = from + pos;
        let end = start + needle.len();
        let before_ok = !first_word || !hay[..start].chars().next_back().is_some_and(is_word);
        let after_ok = !last_word || !hay[end..].chars().next().is_some_and(is_word);
        if before_ok && after_ok {
            return true;
        }
        from = start + hay[start..].chars().next().map_or(1, char::len_utf8);
    }
    false
}

/// `*` matches any run of characters; everything else itself.
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

// ---- expressions (JSON and delimited conditions) ----

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Open,
    Close,
    And,
    Or,
    Op(Op),
    Selector(String),
    Quoted(String),
    Regex(String),
    Word(String),
}

fn tokenize(s: &str, json: bool) -> Result<Vec<Tok>, PatternError> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push(Tok::Open);
                i += 1;
            }
            ')' => {
                out.push(Tok::Close);
                i += 1;
            }
            '&' if next == Some('&') => {
                out.push(Tok::And);
                i += 2;
            }
            '|' if next == Some('|') => {
                out.push(Tok::Or);
                i += 2;
            }
            '=' => {
                out.push(Tok::Op(Op::Eq));
                i += if next == Some('=') { 2 } else { 1 };
            }
            '!' if next == Some('=') => {
                out.push(Tok::Op(Op::Ne));
                i += 2;
            }
            '<' | '>' => {
                let eq = next == Some('=');
                out.push(Tok::Op(match (c, eq) {
                    ('<', false) => Op::Lt,
                    ('<', true) => Op::Le,
                    ('>', false) => Op::Gt,
                    _ => Op::Ge,
                }));
                i += if eq { 2 } else { 1 };
            }
            '"' => {
                let (q, n) = quoted(&chars, i)?;
                out.push(Tok::Quoted(q));
                i = n;
            }
            '%' => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|c| *c == '%')
                    .ok_or_else(|| PatternError("a regular expression must end with %".into()))?;
                out.push(Tok::Regex(chars[i + 1..i + 1 + end].iter().collect()));
                i += end + 2;
            }
            '$' if json => {
                // A selector runs to whitespace, an operator or a closing parenthesis, brackets
                // (and the quotes inside them) included.
                let start = i;
                let mut depth = 0;
                let mut quote: Option<char> = None;
                while i < chars.len() {
                    let ch = chars[i];
                    if let Some(q) = quote {
                        if ch == q {
                            quote = None;
                        }
                    } else if ch == '\'' || ch == '"' && depth > 0 {
                        quote = Some(ch);
                    } else if ch == '[' {
                        depth += 1;
                    } else if ch == ']' {
                        depth -= 1;
                    } else if depth == 0 && (ch.is_whitespace() || "=!<>()&|".contains(ch)) {
                        break;
                    }
                    i += 1;
                }
                out.push(Tok::Selector(chars[start..i].iter().collect()));
            }
            _ => {
                let start = i;
                let ends_word = |i: usize| {
                    let c = chars[i];
                    let doubled = chars.get(i + 1) == Some(&c);
                    c.is_whitespace() || "=!<>()".contains(c) || ((c == '&' || c == '|') && doubled)
                };
                while i < chars.len() && !ends_word(i) {
                    i += 1;
                }
                if start == i {
                    return err(format!("unexpected character {c:?}"));
                }
                out.push(Tok::Word(chars[start..i].iter().collect()));
            }
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Tok>,
    pos: usize,
    regexes: usize,
}

type CondFn<S> = dyn Fn(&mut Parser) -> Result<Expr<S>, PatternError>;

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn end(&self) -> Result<(), PatternError> {
        match self.peek() {
            None => Ok(()),
            Some(t) => err(format!("unexpected {t:?}")),
        }
    }

    fn expr<S>(&mut self, cond: &CondFn<S>) -> Result<Expr<S>, PatternError> {
        let mut ors = vec![self.and(cond)?];
        while self.peek() == Some(&Tok::Or) {
            self.pos += 1;
            ors.push(self.and(cond)?);
        }
        Ok(if ors.len() == 1 { ors.remove(0) } else { Expr::Or(ors) })
    }

    fn and<S>(&mut self, cond: &CondFn<S>) -> Result<Expr<S>, PatternError> {
        let mut ands = vec![self.unary(cond)?];
        while self.peek() == Some(&Tok::And) {
            self.pos += 1;
            ands.push(self.unary(cond)?);
        }
        Ok(if ands.len() == 1 { ands.remove(0) } else { Expr::And(ands) })
    }

    fn unary<S>(&mut self, cond: &CondFn<S>) -> Result<Expr<S>, PatternError> {
        if self.peek() == Some(&Tok::Open) {
            self.pos += 1;
            let e = self.expr(cond)?;
            if self.next() != Some(Tok::Close) {
                return err("a parenthesis is not closed");
            }
            return Ok(e);
        }
        cond(self)
    }

    fn json_cond(&mut self) -> Result<Expr<Selector>, PatternError> {
        let sel = match self.next() {
            Some(Tok::Selector(s)) => Selector::parse(&s)?,
            other => return err(format!("expected a selector ($.field), found {other:?}")),
        };
        let test = self.test()?;
        Ok(Expr::Cond(sel, test))
    }

    fn test(&mut self) -> Result<Test, PatternError> {
        match self.next() {
            Some(Tok::Op(op)) => Ok(Test::Cmp(op, self.operand(op)?)),
            Some(Tok::Word(w)) if w == "IS" => match self.next() {
                Some(Tok::Word(w)) if w == "NULL" => Ok(Test::IsNull),
                Some(Tok::Word(w)) if w == "TRUE" => Ok(Test::IsTrue),
                Some(Tok::Word(w)) if w == "FALSE" => Ok(Test::IsFalse),
                other => err(format!("expected NULL, TRUE or FALSE after IS, found {other:?}")),
            },
            Some(Tok::Word(w)) if w == "NOT" => match self.next() {
                Some(Tok::Word(w)) if w == "EXISTS" => Ok(Test::NotExists),
                other => err(format!("expected EXISTS after NOT, found {other:?}")),
            },
            other => err(format!("expected an operator, found {other:?}")),
        }
    }

    fn operand(&mut self, op: Op) -> Result<Operand, PatternError> {
        let operand = match self.next() {
            Some(Tok::Quoted(q)) => Operand::Glob(q),
            Some(Tok::Regex(r)) => {
                self.regexes += 1;
                if self.regexes > MAX_REGEX {
                    return err(format!(
                        "at most {MAX_REGEX} regular expressions are allowed in a pattern"
                    ));
                }
                Operand::Regex(regex(&r)?)
            }
            Some(Tok::Word(w)) => match w.parse::<f64>() {
                Ok(n) if n.is_finite() => Operand::Number(n, w),
                _ => Operand::Glob(w),
            },
            other => return err(format!("expected a value, found {other:?}")),
        };
        let numeric = matches!(operand, Operand::Number(..));
        if matches!(op, Op::Lt | Op::Le | Op::Gt | Op::Ge) && !numeric {
            return err("< > <= >= compare numbers only");
        }
        Ok(operand)
    }

    fn field_cond(&mut self, default: &str) -> Result<Expr<String>, PatternError> {
        let name = match self.peek() {
            Some(Tok::Word(w)) => {
                let w = w.clone();
                self.pos += 1;
                w
            }
            _ => default.to_string(),
        };
        let test = match self.next() {
            Some(Tok::Op(op)) => Test::Cmp(op, self.operand(op)?),
            other => return err(format!("expected an operator, found {other:?}")),
        };
        Ok(Expr::Cond(name, test))
    }
}

impl<S> Expr<S> {
    fn eval(&self, test: &dyn Fn(&S, &Test) -> bool) -> bool {
        match self {
            Expr::Or(v) => v.iter().any(|e| e.eval(test)),
            Expr::And(v) => v.iter().all(|e| e.eval(test)),
            Expr::Cond(s, t) => test(s, t),
        }
    }
}

impl Selector {
    pub fn parse(s: &str) -> Result<Selector, PatternError> {
        let bad = || PatternError(format!("invalid selector {s}"));
        let rest = s.strip_prefix('$').ok_or_else(bad)?;
        let chars: Vec<char> = rest.chars().collect();
        let mut segs = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '.' => {
                    i += 1;
                    if chars.get(i) == Some(&'[') {
                        continue;
                    }
                    let start = i;
                    while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                        i += 1;
                    }
                    if start == i {
                        return Err(bad());
                    }
                    segs.push(Seg::Key(chars[start..i].iter().collect()));
                }
                '[' => {
                    let end = chars[i..].iter().position(|c| *c == ']').ok_or_else(bad)? + i;
                    let inner: String = chars[i + 1..end].iter().collect();
                    let inner = inner.trim();
                    segs.push(if inner == "*" {
                        Seg::Any
                    } else if let Ok(n) = inner.parse::<usize>() {
                        Seg::Index(n)
                    } else if inner.len() >= 2
                        && (inner.starts_with('\'') && inner.ends_with('\'')
                            || inner.starts_with('"') && inner.ends_with('"'))
                    {
                        Seg::Key(inner[1..inner.len() - 1].to_string())
                    } else {
                        return Err(bad());
                    });
                    i = end + 1;
                }
                _ => return Err(bad()),
            }
        }
        Ok(Selector(segs))
    }

    /// The values the selector reaches (several through `[*]`).
    fn resolve<'a>(&self, root: &'a Json) -> Vec<&'a Json> {
        let mut current = vec![root];
        for seg in &self.0 {
            let mut next = Vec::new();
            for v in current {
                match seg {
                    Seg::Key(k) => next.extend(v.get(k.as_str())),
                    Seg::Index(n) => next.extend(v.get(*n)),
                    Seg::Any => next.extend(v.as_array().into_iter().flatten()),
                }
            }
            current = next;
        }
        current
    }
}

fn json_test(doc: &Json, sel: &Selector, test: &Test) -> bool {
    let values = sel.resolve(doc);
    if let Test::NotExists = test {
        return values.is_empty();
    }
    values.into_iter().any(|v| match test {
        Test::IsNull => v.is_null(),
        Test::IsTrue => v == &Json::Bool(true),
        Test::IsFalse => v == &Json::Bool(false),
        Test::NotExists => false,
        Test::Cmp(op, operand) => match v {
            Json::Object(_) | Json::Array(_) | Json::Null => false,
            Json::Number(n) => compare_number(n.as_f64(), &n.to_string(), *op, operand),
            Json::Bool(b) => compare_text(if *b { "true" } else { "false" }, *op, operand),
            Json::String(s) => compare_text(s, *op, operand),
        },
    })
}

fn compare_number(n: Option<f64>, text: &str, op: Op, operand: &Operand) -> bool {
    match (operand, n) {
        (Operand::Number(want, _), Some(n)) => match op {
            Op::Eq => n == *want,
            Op::Ne => n != *want,
            Op::Lt => n < *want,
            Op::Le => n <= *want,
            Op::Gt => n > *want,
            Op::Ge => n >= *want,
        },
        (Operand::Number(..), None) => false,
        _ => compare_text(text, op, operand),
    }
}

/// A string value (a JSON string or a delimited field) against an operand.
fn compare_text(s: &str, op: Op, operand: &Operand) -> bool {
    match operand {
        Operand::Number(_, raw) => match s.trim().parse::<f64>() {
            Ok(n) => compare_number(Some(n), s, op, operand),
            Err(_) => match op {
                Op::Eq => s == raw,
                Op::Ne => s != raw,
                _ => false,
            },
        },
        Operand::Glob(g) => match op {
            Op::Eq => glob(g, s),
            Op::Ne => !glob(g, s),
            _ => false,
        },
        Operand::Regex(r) => {
            let m = r.is_match(s).unwrap_or(false);
            match op {
                Op::Eq => m,
                Op::Ne => !m,
                _ => false,
            }
        }
    }
}

// ---- space-delimited patterns ----

fn delimited(p: &str) -> Result<Kind, PatternError> {
    let inner = p
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .ok_or_else(|| PatternError("a space-delimited pattern must end with ]".into()))?;
    let mut fields = Vec::new();
    let mut conditions = Vec::new();
    let mut regexes = 0;
    for part in split_top(inner) {
        let part = part.trim();
        if part == "..." {
            fields.push(Field::Ellipsis);
            continue;
        }
        let name_len = part.chars().take_while(|c| c.is_alphanumeric() || *c == '_').count();
        if name_len == 0 {
            return err(format!("invalid field {part:?}"));
        }
        let name: String = part.chars().take(name_len).collect();
        let rest: String = part.chars().skip(name_len).collect();
        if !rest.trim().is_empty() {
            let mut parser = Parser { tokens: tokenize(&rest, false)?, pos: 0, regexes };
            let n = name.clone();
            let expr = parser.expr(&move |p: &mut Parser| p.field_cond(&n))?;
            parser.end()?;
            regexes = parser.regexes;
            conditions.push(expr);
        }
        fields.push(Field::Named(name));
    }
    if fields.is_empty() {
        return err("a space-delimited pattern names no fields");
    }
    let condition = match conditions.len() {
        0 => None,
        1 => conditions.pop(),
        _ => Some(Expr::And(conditions)),
    };
    Ok(Kind::Delimited { fields, condition })
}

/// Splits on commas outside quotes, brackets and `%regex%`.
fn split_top(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote = false;
    let mut regex = false;
    let mut depth = 0i32;
    for c in s.chars() {
        match c {
            '"' if !regex => quote = !quote,
            '%' if !quote => regex = !regex,
            '[' if !quote && !regex => depth += 1,
            ']' if !quote && !regex => depth -= 1,
            ',' if !quote && !regex && depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    out
}

/// An event's space-delimited fields: `"..."` and `[...]` are one field each (without their
/// quotes or brackets).
pub fn split_fields(message: &str) -> Vec<String> {
    let chars: Vec<char> = message.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == ' ' || chars[i] == '\t' {
            i += 1;
            continue;
        }
        let close = match chars[i] {
            '"' => Some('"'),
            '[' => Some(']'),
            _ => None,
        };
        if let Some(close) = close
            && let Some(end) = chars[i + 1..].iter().position(|c| *c == close)
        {
            out.push(chars[i + 1..i + 1 + end].iter().collect());
            i += end + 2;
            continue;
        }
        let start = i;
        while i < chars.len() && chars[i] != ' ' && chars[i] != '\t' {
            i += 1;
        }
        out.push(chars[start..i].iter().collect());
    }
    out
}

/// Binds pattern fields to event fields (`...` taking any number) and checks the conditions;
/// backtracks over the `...` choices, at most `MAX_STEPS` steps.
fn bind(
    fields: &[Field],
    values: &[String],
    bound: &mut Vec<(String, String)>,
    steps: &mut usize,
    condition: Option<&Expr<String>>,
) -> bool {
    *steps += 1;
    if *steps > MAX_STEPS {
        return false;
    }
    match fields.first() {
        None => {
            values.is_empty()
                && condition.is_none_or(|c| {
                    c.eval(&|name: &String, test: &Test| {
                        let Some((_, v)) = bound.iter().find(|(k, _)| k == name) else {
                            return false;
                        };
                        match test {
                            Test::Cmp(op, operand) => compare_text(v, *op, operand),
                            _ => false,
                        }
                    })
                })
        }
        Some(Field::Ellipsis) => (0..=values.len())
            .any(|skip| bind(&fields[1..], &values[skip..], bound, steps, condition)),
        Some(Field::Named(name)) => {
            let Some(first) = values.first() else {
                return false;
            };
            bound.push((name.clone(), first.clone()));
            if bind(&fields[1..], &values[1..], bound, steps, condition) {
                return true;
            }
            bound.pop();
            false
        }
    }
}
