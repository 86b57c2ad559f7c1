//! GetMetricData metric math, as "Using metric math" (using-metric-math.html) documents it.
//!
//! [`parse`] turns an expression into an [`Expr`] (syntax, function names and arities are checked
//! there, so a bad expression fails before any data is read); [`evaluate`] runs it over the
//! other queries' results, which a [`Context`] hands out already aligned on the query's grid.
//!
//! Values are scalars (S), time series (TS) and arrays of time series (TS[]), as the guide's
//! tables name them. The rules the guide gives, and what this module does where it is silent:
//! - Arithmetic `+ - * / ^`, comparisons `< <= > >= == !=` and logic `AND`/`&&`, `OR`/`||`,
//!   `NOT`/`!` (1 true, 0 false) work on S⊕S, TS⊕S, TS⊕TS, TS[]⊕S and TS[]⊕TS. Between two time
//!   series, a point missing from one side is taken as 0 when the other side has one ("Missing
//!   values in a time series are treated as 0"); with both sides missing there is no point. A
//!   division by zero drops the point, and so does any result that is not a finite number
//!   (`LOG(0)`, `SQRT(-1)`, an overflow).
//! - `SUM`/`AVG`/`MIN`/`MAX`/`STDDEV` of a TS give a scalar over its points; of a TS[] a TS,
//!   point by point over the timestamps where at least one series has a point. `AVG` of an array
//!   counts a missing point as 0 (the guide says so for AVG); the others use the points present.
//!   STDDEV is the population standard deviation.
//! - `FILL(x, v)` fills every missing point of a TS (or of each TS of a TS[]) with a scalar or
//!   with another series' point; `REPEAT` carries the last point forward (a leading gap stays
//!   empty) and `LINEAR` interpolates by time between the points around a gap (leading and
//!   trailing gaps stay empty). `RATE`, `DIFF` and `DIFF_TIME` compare each point with the
//!   series' previous point, so the first point has none; `RUNNING_SUM` keeps the gaps.
//! - `IF(c, a[, b])` per point of `c`: no point where `c` has none; where `c` is true, `a` (a
//!   missing point of a series `a` counts as 0); where false, `b` (no point when `b` is absent
//!   or has none there), exactly the guide's tables.
//! - `METRICS()` is every metric query of the request (the ids [`Context::all_ids`] lists), and
//!   `METRICS("s")` those whose id contains `s`.
//! - The final result must be a TS or a TS[]: a scalar is refused, as the guide says
//!   ("taking the AVG of a single time series produces a scalar number, so it can't be the final
//!   expression result"); `TIME_SERIES(...)` turns one into a series.
//! - Labels: an array result keeps each input series' label; a single-series result has an empty
//!   label (the caller gives it the expression's label).
//!
//! - Also: `ABS CEIL FLOOR SQRT LOG LOG10 EXP` (pointwise), `PERIOD`, `DATAPOINT_COUNT`,
//!   `METRIC_COUNT`, `REMOVE_EMPTY`, `FIRST`/`LAST`, `SORT`, `SLICE`, `CONCAT`, `TIME_SERIES`,
//!   `MINUTE HOUR DAY DATE MONTH YEAR EPOCH` (UTC; DAY is 1 = Monday ... 7 = Sunday). `SEARCH`,
//!   Metrics Insights `SELECT` queries and the functions that need other services
//!   (`ANOMALY_DETECTION_BAND`, `INSIGHT_RULE_METRIC`, `SERVICE_QUOTA`, `LAMBDA`,
//!   `DB_PERF_INSIGHTS`) are refused at parse time, naming what is not supported.
//!
//! Limits: an expression is at most [`MAX_EXPRESSION_LENGTH`] characters (the API's
//! `MetricExpression` maximum) and nests at most [`MAX_NESTING`] levels, so no input can exhaust
//! the stack; nothing here panics on any input.

use std::fmt;

/// The longest expression accepted, in characters (botocore's `MetricExpression` shape: max 2048).
pub const MAX_EXPRESSION_LENGTH: usize = 2048;
/// How deeply parentheses, calls, arrays and prefix operators may nest.
pub const MAX_NESTING: usize = 64;

/// One time series on the query's grid: `values[i]` is the point at `timestamps[i]` (epoch
/// seconds, ascending, one per period), None = no data.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub label: String,
    pub timestamps: Vec<i64>,
    pub values: Vec<Option<f64>>,
}

/// Why an expression cannot be parsed or evaluated; the text is meant for the caller's
/// `Messages`/error (`Syntax error at position N: ...` counts characters from 1).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MathError {
    #[error("{0}")]
    Invalid(String),
}

fn invalid(message: impl Into<String>) -> MathError {
    MathError::Invalid(message.into())
}

/// What an expression can see: the other queries' results by id (already evaluated, same grid),
/// the grid and period.
pub trait Context {
    /// The result of the query with this id: one series for a metric, one or more for an
    /// expression. None when the request has no such id.
    fn series(&self, id: &str) -> Option<Vec<Series>>;
    /// The ids `METRICS()` returns: the request's metric (`MetricStat`) queries, in request
    /// order. Math expressions are not included, as the guide says.
    fn all_ids(&self) -> Vec<String>;
    /// The timestamps of the query's periods, ascending.
    fn grid(&self) -> &[i64];
    /// The period in seconds.
    fn period(&self) -> u32;
}

/// A parsed expression.
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    root: Node,
    references: Vec<String>,
    uses_metrics: bool,
}

impl Expr {
    /// The ids the expression names (e.g. `m1`, `e2`), each once, in order of first appearance.
    pub fn references(&self) -> Vec<String> {
        self.references.clone()
    }

    /// Whether the expression calls `METRICS(...)`, and so depends on every metric query.
    pub fn uses_metrics_function(&self) -> bool {
        self.uses_metrics
    }
}

// ---------------------------------------------------------------------------------------------
// Syntax

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
    And,
    Or,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Func {
    Abs,
    Avg,
    Ceil,
    Concat,
    DatapointCount,
    Date,
    Day,
    Diff,
    DiffTime,
    Epoch,
    Exp,
    Fill,
    First,
    Floor,
    Hour,
    If,
    Last,
    Log,
    Log10,
    Max,
    MetricCount,
    Metrics,
    Min,
    Minute,
    Month,
    Period,
    Rate,
    RemoveEmpty,
    RunningSum,
    Slice,
    Sort,
    Sqrt,
    Stddev,
    Sum,
    TimeSeries,
    Year,
}

/// Name, function, fewest and most arguments.
const FUNCTIONS: &[(&str, Func, usize, usize)] = &[
    ("ABS", Func::Abs, 1, 1),
    ("AVG", Func::Avg, 1, 1),
    ("CEIL", Func::Ceil, 1, 1),
    ("CONCAT", Func::Concat, 1, usize::MAX),
    ("DATAPOINT_COUNT", Func::DatapointCount, 1, 1),
    ("DATE", Func::Date, 1, 1),
    ("DAY", Func::Day, 1, 1),
    ("DIFF", Func::Diff, 1, 1),
    ("DIFF_TIME", Func::DiffTime, 1, 1),
    ("EPOCH", Func::Epoch, 1, 1),
    ("EXP", Func::Exp, 1, 1),
    ("FILL", Func::Fill, 2, 2),
    ("FIRST", Func::First, 1, 1),
    ("FLOOR", Func::Floor, 1, 1),
    ("HOUR", Func::Hour, 1, 1),
    ("IF", Func::If, 2, 3),
    ("LAST", Func::Last, 1, 1),
    ("LOG", Func::Log, 1, 1),
    ("LOG10", Func::Log10, 1, 1),
    ("MAX", Func::Max, 1, 1),
    ("METRIC_COUNT", Func::MetricCount, 1, 1),
    ("METRICS", Func::Metrics, 0, 1),
    ("MIN", Func::Min, 1, 1),
    ("MINUTE", Func::Minute, 1, 1),
    ("MONTH", Func::Month, 1, 1),
    ("PERIOD", Func::Period, 1, 1),
    ("RATE", Func::Rate, 1, 1),
    ("REMOVE_EMPTY", Func::RemoveEmpty, 1, 1),
    ("RUNNING_SUM", Func::RunningSum, 1, 1),
    ("SLICE", Func::Slice, 2, 3),
    ("SORT", Func::Sort, 3, 4),
    ("SQRT", Func::Sqrt, 1, 1),
    ("STDDEV", Func::Stddev, 1, 1),
    ("SUM", Func::Sum, 1, 1),
    ("TIME_SERIES", Func::TimeSeries, 1, 1),
    ("YEAR", Func::Year, 1, 1),
];

/// Functions CloudWatch has that need services Cumulo does not model.
const UNSUPPORTED: &[&str] = &[
    "ANOMALY_DETECTION_BAND",
    "DB_PERF_INSIGHTS",
    "INSIGHT_RULE_METRIC",
    "LAMBDA",
    "SERVICE_QUOTA",
];

/// Bare uppercase words that are arguments, not calls: FILL's REPEAT/LINEAR, SORT's statistic
/// and order.
const WORDS: &[&str] = &["REPEAT", "LINEAR", "ASC", "DESC", "SUM", "AVG", "MIN", "MAX"];

fn func_name(f: Func) -> &'static str {
    FUNCTIONS.iter().find(|(_, g, _, _)| *g == f).map_or("?", |(n, _, _, _)| n)
}

#[derive(Clone, Debug, PartialEq)]
enum Node {
    Num(f64),
    Str(String),
    Id(String),
    Word(&'static str),
    Array(Vec<Node>),
    Neg(Box<Node>),
    Not(Box<Node>),
    /// `a op b op c ...`, evaluated left to right.
    Chain(Box<Node>, Vec<(Op, Node)>),
    /// `a ^ b` (right-associative, so nested through `unary` and bounded there).
    Pow(Box<Node>, Box<Node>),
    Call(Func, Vec<Node>),
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Num(f64),
    Str(String),
    Lower(String),
    Upper(String),
    LParen,
    RParen,
    LBrack,
    RBrack,
    Comma,
    Plus,
    Minus,
    Star,
    Slash,
    Caret,
    Lt,
    Le,
    Gt,
    Ge,
    EqEq,
    Ne,
    AndAnd,
    OrOr,
    Bang,
    End,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Num(n) => write!(f, "{n}"),
            Tok::Str(s) => write!(f, "\"{s}\""),
            Tok::Lower(s) | Tok::Upper(s) => f.write_str(s),
            Tok::LParen => f.write_str("("),
            Tok::RParen => f.write_str(")"),
            Tok::LBrack => f.write_str("["),
            Tok::RBrack => f.write_str("]"),
            Tok::Comma => f.write_str(","),
            Tok::Plus => f.write_str("+"),
            Tok::Minus => f.write_str("-"),
            Tok::Star => f.write_str("*"),
            Tok::Slash => f.write_str("/"),
            Tok::Caret => f.write_str("^"),
            Tok::Lt => f.write_str("<"),
            Tok::Le => f.write_str("<="),
            Tok::Gt => f.write_str(">"),
            Tok::Ge => f.write_str(">="),
            Tok::EqEq => f.write_str("=="),
            Tok::Ne => f.write_str("!="),
            Tok::AndAnd => f.write_str("&&"),
            Tok::OrOr => f.write_str("||"),
            Tok::Bang => f.write_str("!"),
            Tok::End => f.write_str("the end of the expression"),
        }
    }
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
    depth: usize,
    references: Vec<String>,
    uses_metrics: bool,
}

fn syntax(pos: usize, detail: impl fmt::Display) -> MathError {
    invalid(format!("Syntax error at position {}: {detail}", pos + 1))
}

/// Parses a metric math expression.
pub fn parse(expression: &str) -> Result<Expr, MathError> {
    let chars: Vec<char> = expression.chars().collect();
    if chars.len() > MAX_EXPRESSION_LENGTH {
        return Err(invalid(format!(
            "The expression is {} characters long; the maximum is {MAX_EXPRESSION_LENGTH}",
            chars.len()
        )));
    }
    let trimmed = expression.trim_start();
    if trimmed.get(..7).is_some_and(|head| head.eq_ignore_ascii_case("SELECT ")) {
        return Err(invalid("Metrics Insights queries (SELECT ...) are not supported by Cumulo"));
    }
    let mut p = Parser { chars, pos: 0, depth: 0, references: Vec::new(), uses_metrics: false };
    let (start, first) = p.peek()?;
    if first == Tok::End {
        return Err(syntax(start, "the expression is empty"));
    }
    let root = p.expr()?;
    let (at, tok) = p.peek()?;
    if tok != Tok::End {
        return Err(syntax(at, format!("unexpected {tok}")));
    }
    Ok(Expr { root, references: p.references, uses_metrics: p.uses_metrics })
}

impl Parser {
    /// The next token and where it starts, without consuming it.
    fn peek(&self) -> Result<(usize, Tok), MathError> {
        self.lex().map(|(start, tok, _)| (start, tok))
    }

    fn next(&mut self) -> Result<(usize, Tok), MathError> {
        let (start, tok, end) = self.lex()?;
        self.pos = end;
        Ok((start, tok))
    }

    fn expect(&mut self, want: Tok) -> Result<(), MathError> {
        let (at, tok) = self.next()?;
        if tok == want { Ok(()) } else { Err(syntax(at, format!("expected {want}, found {tok}"))) }
    }

    /// Lexes one token at the current position: (start, token, end).
    fn lex(&self) -> Result<(usize, Tok, usize), MathError> {
        let cs = &self.chars;
        let mut i = self.pos;
        while i < cs.len() && cs[i].is_whitespace() {
            i += 1;
        }
        let start = i;
        let Some(&c) = cs.get(i) else {
            return Ok((start, Tok::End, i));
        };
        let next = cs.get(i + 1).copied();
        let two = |tok| Ok((start, tok, i + 2));
        let one = |tok| Ok((start, tok, i + 1));
        match (c, next) {
            ('<', Some('=')) => return two(Tok::Le),
            ('>', Some('=')) => return two(Tok::Ge),
            ('=', Some('=')) => return two(Tok::EqEq),
            ('!', Some('=')) => return two(Tok::Ne),
            ('&', Some('&')) => return two(Tok::AndAnd),
            ('|', Some('|')) => return two(Tok::OrOr),
            ('(', _) => return one(Tok::LParen),
            (')', _) => return one(Tok::RParen),
            ('[', _) => return one(Tok::LBrack),
            (']', _) => return one(Tok::RBrack),
            (',', _) => return one(Tok::Comma),
            ('+', _) => return one(Tok::Plus),
            ('-', _) => return one(Tok::Minus),
            ('*', _) => return one(Tok::Star),
            ('/', _) => return one(Tok::Slash),
            ('^', _) => return one(Tok::Caret),
            ('<', _) => return one(Tok::Lt),
            ('>', _) => return one(Tok::Gt),
            ('!', _) => return one(Tok::Bang),
            _ => {}
        }
        if c.is_ascii_digit() || (c == '.' && next.is_some_and(|n| n.is_ascii_digit())) {
            let mut j = i;
            while j < cs.len() && cs[j].is_ascii_digit() {
                j += 1;
            }
            if j < cs.len() && cs[j] == '.' {
                j += 1;
                while j < cs.len() && cs[j].is_ascii_digit() {
                    j += 1;
                }
            }
            if j < cs.len() && (cs[j] == 'e' || cs[j] == 'E') {
                let mut k = j + 1;
                if k < cs.len() && (cs[k] == '+' || cs[k] == '-') {
                    k += 1;
                }
                if k < cs.len() && cs[k].is_ascii_digit() {
                    while k < cs.len() && cs[k].is_ascii_digit() {
                        k += 1;
                    }
                    j = k;
                }
            }
            let text: String = cs[i..j].iter().collect();
            return match text.parse::<f64>() {
                Ok(n) if n.is_finite() => Ok((start, Tok::Num(n), j)),
                _ => Err(syntax(start, format!("the number {text} is out of range"))),
            };
        }
        if c.is_ascii_alphabetic() {
            let mut j = i;
            while j < cs.len() && (cs[j].is_ascii_alphanumeric() || cs[j] == '_') {
                j += 1;
            }
            let word: String = cs[i..j].iter().collect();
            let tok = if c.is_ascii_lowercase() { Tok::Lower(word) } else { Tok::Upper(word) };
            return Ok((start, tok, j));
        }
        let close = match c {
            '"' => Some('"'),
            '\'' => Some('\''),
            '\u{201c}' => Some('\u{201d}'),
            _ => None,
        };
        if let Some(close) = close {
            let mut j = i + 1;
            while j < cs.len() && cs[j] != close {
                j += 1;
            }
            if j >= cs.len() {
                return Err(syntax(start, "the string is not closed"));
            }
            let text: String = cs[i + 1..j].iter().collect();
            return Ok((start, Tok::Str(text), j + 1));
        }
        Err(syntax(start, format!("unexpected character '{c}'")))
    }

    fn expr(&mut self) -> Result<Node, MathError> {
        self.level(0)
    }

    /// The binary operator `tok` stands for at precedence `level` (0 binds loosest).
    fn operator(level: usize, tok: &Tok) -> Option<Op> {
        match (level, tok) {
            (0, Tok::OrOr) => Some(Op::Or),
            (0, Tok::Upper(w)) if w == "OR" => Some(Op::Or),
            (1, Tok::AndAnd) => Some(Op::And),
            (1, Tok::Upper(w)) if w == "AND" => Some(Op::And),
            (2, Tok::Lt) => Some(Op::Lt),
            (2, Tok::Le) => Some(Op::Le),
            (2, Tok::Gt) => Some(Op::Gt),
            (2, Tok::Ge) => Some(Op::Ge),
            (2, Tok::EqEq) => Some(Op::Eq),
            (2, Tok::Ne) => Some(Op::Ne),
            (3, Tok::Plus) => Some(Op::Add),
            (3, Tok::Minus) => Some(Op::Sub),
            (4, Tok::Star) => Some(Op::Mul),
            (4, Tok::Slash) => Some(Op::Div),
            _ => None,
        }
    }

    /// A left-associative run of operators of one precedence level, kept flat (a `Chain`) so
    /// that a long `m1 + m2 + ...` costs no stack depth when evaluated.
    fn level(&mut self, level: usize) -> Result<Node, MathError> {
        let operand = |p: &mut Self| {
            if level >= 4 { p.unary() } else { p.level(level + 1) }
        };
        let first = operand(self)?;
        let mut rest = Vec::new();
        while let Some(op) = Self::operator(level, &self.peek()?.1) {
            self.next()?;
            rest.push((op, operand(self)?));
        }
        Ok(if rest.is_empty() { first } else { Node::Chain(Box::new(first), rest) })
    }

    /// Every nested sub-expression passes through here, so this is where nesting is bounded.
    fn unary(&mut self) -> Result<Node, MathError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            let at = self.peek().map_or(self.pos, |(at, _)| at);
            return Err(syntax(
                at,
                format!("the expression nests more than {MAX_NESTING} levels deep"),
            ));
        }
        let node = self.unary_inner();
        self.depth -= 1;
        node
    }

    fn unary_inner(&mut self) -> Result<Node, MathError> {
        match self.peek()?.1 {
            Tok::Minus => {
                self.next()?;
                Ok(Node::Neg(Box::new(self.unary()?)))
            }
            Tok::Bang => {
                self.next()?;
                Ok(Node::Not(Box::new(self.unary()?)))
            }
            Tok::Upper(w) if w == "NOT" => {
                self.next()?;
                Ok(Node::Not(Box::new(self.unary()?)))
            }
            _ => {
                let base = self.primary()?;
                if self.peek()?.1 == Tok::Caret {
                    self.next()?;
                    let exponent = self.unary()?;
                    Ok(Node::Pow(Box::new(base), Box::new(exponent)))
                } else {
                    Ok(base)
                }
            }
        }
    }

    fn primary(&mut self) -> Result<Node, MathError> {
        let (at, tok) = self.next()?;
        match tok {
            Tok::Num(n) => Ok(Node::Num(n)),
            Tok::Str(s) => Ok(Node::Str(s)),
            Tok::LParen => {
                let inner = self.expr()?;
                self.expect(Tok::RParen)?;
                Ok(inner)
            }
            Tok::LBrack => {
                let items = self.list(Tok::RBrack)?;
                Ok(Node::Array(items))
            }
            Tok::Lower(id) => {
                if self.peek()?.1 == Tok::LParen {
                    return Err(invalid(format!(
                        "Unknown function {id} (functions are written in uppercase)"
                    )));
                }
                if !self.references.contains(&id) {
                    self.references.push(id.clone());
                }
                Ok(Node::Id(id))
            }
            Tok::Upper(name) => {
                if self.peek()?.1 == Tok::LParen {
                    return self.call(at, name);
                }
                match WORDS.iter().find(|w| **w == name) {
                    Some(w) => Ok(Node::Word(w)),
                    None if FUNCTIONS.iter().any(|(n, _, _, _)| *n == name) => {
                        Err(syntax(at, format!("{name} needs its arguments in parentheses")))
                    }
                    None => Err(syntax(
                        at,
                        format!("unexpected {name} (ids start with a lowercase letter)"),
                    )),
                }
            }
            other => Err(syntax(at, format!("expected a value, found {other}"))),
        }
    }

    /// Comma-separated expressions up to `close` (already past the opening bracket).
    fn list(&mut self, close: Tok) -> Result<Vec<Node>, MathError> {
        let mut items = Vec::new();
        if self.peek()?.1 == close {
            self.next()?;
            return Ok(items);
        }
        loop {
            items.push(self.expr()?);
            let (at, tok) = self.next()?;
            if tok == close {
                return Ok(items);
            }
            if tok != Tok::Comma {
                return Err(syntax(at, format!("expected , or {close}, found {tok}")));
            }
        }
    }

    fn call(&mut self, at: usize, name: String) -> Result<Node, MathError> {
        if name == "SEARCH" {
            return Err(invalid(
                "Metric math search expressions (SEARCH) are not supported by Cumulo",
            ));
        }
        if UNSUPPORTED.contains(&name.as_str()) {
            return Err(invalid(format!(
                "The metric math function {name} is not supported by Cumulo"
            )));
        }
        let Some(&(_, func, min, max)) = FUNCTIONS.iter().find(|(n, _, _, _)| *n == name) else {
            return Err(invalid(format!("Unknown function {name}")));
        };
        self.expect(Tok::LParen)?;
        let args = self.list(Tok::RParen)?;
        if args.len() < min || args.len() > max {
            let wanted = if min == max {
                format!("{min}")
            } else if max == usize::MAX {
                format!("at least {min}")
            } else {
                format!("{min} to {max}")
            };
            return Err(syntax(at, format!("{name} takes {wanted} arguments, not {}", args.len())));
        }
        if func == Func::Metrics {
            self.uses_metrics = true;
            if let Some(arg) = args.first()
                && !matches!(arg, Node::Str(_))
            {
                return Err(syntax(at, "METRICS takes a string, e.g. METRICS(\"errors\")"));
            }
        }
        Ok(Node::Call(func, args))
    }
}

// ---------------------------------------------------------------------------------------------
// Evaluation

/// A series on the grid.
#[derive(Clone, Debug)]
struct Ts {
    label: String,
    v: Vec<Option<f64>>,
}

#[derive(Clone, Debug)]
enum Val {
    /// None: a statistic of no data (e.g. AVG of an empty series).
    Scalar(Option<f64>),
    Ts(Ts),
    Arr(Vec<Ts>),
    /// A string literal outside METRICS(...) (which reads its string from the syntax tree).
    Str,
    Word(&'static str),
}

impl Val {
    fn kind(&self) -> &'static str {
        match self {
            Val::Scalar(_) => "a scalar",
            Val::Ts(_) => "a time series",
            Val::Arr(_) => "an array of time series",
            Val::Str => "a string",
            Val::Word(_) => "a keyword",
        }
    }
}

/// A result point: None unless finite; -0 is written 0.
fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(if x == 0.0 { 0.0 } else { x })
}

fn truth(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

fn apply(op: Op, x: f64, y: f64) -> Option<f64> {
    let r = match op {
        Op::Add => x + y,
        Op::Sub => x - y,
        Op::Mul => x * y,
        Op::Div => {
            if y == 0.0 {
                return None;
            }
            x / y
        }
        Op::Pow => x.powf(y),
        Op::Lt => truth(x < y),
        Op::Le => truth(x <= y),
        Op::Gt => truth(x > y),
        Op::Ge => truth(x >= y),
        Op::Eq => truth(x == y),
        Op::Ne => truth(x != y),
        Op::And => truth(x != 0.0 && y != 0.0),
        Op::Or => truth(x != 0.0 || y != 0.0),
    };
    finite(r)
}

struct Eval<'a> {
    cx: &'a dyn Context,
    grid: &'a [i64],
}

/// Runs a parsed expression over the other queries' results.
pub fn evaluate(expr: &Expr, cx: &dyn Context) -> Result<Vec<Series>, MathError> {
    let ev = Eval { cx, grid: cx.grid() };
    let out = |label: String, v: Vec<Option<f64>>| Series {
        label,
        timestamps: ev.grid.to_vec(),
        values: v,
    };
    match ev.eval(&expr.root)? {
        Val::Ts(ts) => Ok(vec![out(String::new(), ts.v)]),
        Val::Arr(arr) => Ok(arr.into_iter().map(|ts| out(ts.label, ts.v)).collect()),
        other => Err(invalid(format!(
            "The expression returns {}; it must return a time series or an array of time series \
             (TIME_SERIES(...) makes a series of a scalar)",
            other.kind()
        ))),
    }
}

impl Eval<'_> {
    fn empty(&self, label: String) -> Ts {
        Ts { label, v: vec![None; self.grid.len()] }
    }

    /// A context series laid onto the grid (points off the grid are dropped).
    fn align(&self, s: Series) -> Ts {
        if s.timestamps == self.grid && s.values.len() == self.grid.len() {
            return Ts { label: s.label, v: s.values };
        }
        let mut ts = self.empty(s.label);
        for (t, v) in s.timestamps.iter().zip(s.values) {
            if let Ok(i) = self.grid.binary_search(t)
                && let Some(slot) = ts.v.get_mut(i)
            {
                *slot = v;
            }
        }
        ts
    }

    fn lookup(&self, id: &str) -> Result<Vec<Ts>, MathError> {
        match self.cx.series(id) {
            Some(list) => Ok(list.into_iter().map(|s| self.align(s)).collect()),
            None => Err(invalid(format!("Unknown metric or expression id: {id}"))),
        }
    }

    fn eval(&self, node: &Node) -> Result<Val, MathError> {
        match node {
            Node::Num(n) => Ok(Val::Scalar(Some(*n))),
            Node::Str(_) => Ok(Val::Str),
            Node::Word(w) => Ok(Val::Word(w)),
            Node::Id(id) => {
                let mut list = self.lookup(id)?;
                if list.len() == 1 {
                    Ok(list.pop().map_or(Val::Arr(Vec::new()), Val::Ts))
                } else {
                    Ok(Val::Arr(list))
                }
            }
            Node::Array(items) => {
                let mut arr = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    match self.eval(item)? {
                        Val::Ts(ts) => arr.push(ts),
                        Val::Arr(more) => arr.extend(more),
                        other => {
                            return Err(invalid(format!(
                                "An array holds time series; element {} is {}",
                                i + 1,
                                other.kind()
                            )));
                        }
                    }
                }
                Ok(Val::Arr(arr))
            }
            Node::Neg(inner) => {
                let v = self.eval(inner)?;
                map_points("-", v, |x| finite(-x))
            }
            Node::Not(inner) => {
                let v = self.eval(inner)?;
                map_points("NOT", v, |x| Some(truth(x == 0.0)))
            }
            Node::Chain(first, rest) => {
                let mut acc = self.eval(first)?;
                for (op, node) in rest {
                    acc = binary(*op, acc, self.eval(node)?)?;
                }
                Ok(acc)
            }
            Node::Pow(a, b) => {
                let a = self.eval(a)?;
                let b = self.eval(b)?;
                binary(Op::Pow, a, b)
            }
            Node::Call(f, args) => self.call(*f, args),
        }
    }

    fn call(&self, f: Func, args: &[Node]) -> Result<Val, MathError> {
        let name = func_name(f);
        if f == Func::Metrics {
            return self.metrics(args.first());
        }
        let mut vals = Vec::with_capacity(args.len());
        for a in args {
            vals.push(self.eval(a)?);
        }
        let mut vals = vals.into_iter();
        let mut arg = || vals.next().unwrap_or(Val::Scalar(None));
        match f {
            Func::Metrics => self.metrics(None),
            Func::Abs => map_points(name, arg(), |x| finite(x.abs())),
            Func::Ceil => map_points(name, arg(), |x| finite(x.ceil())),
            Func::Floor => map_points(name, arg(), |x| finite(x.floor())),
            Func::Sqrt => map_points(name, arg(), |x| finite(x.sqrt())),
            Func::Log => map_points(name, arg(), |x| finite(x.ln())),
            Func::Log10 => map_points(name, arg(), |x| finite(x.log10())),
            Func::Exp => map_points(name, arg(), |x| finite(x.exp())),
            Func::Sum | Func::Avg | Func::Min | Func::Max | Func::Stddev => {
                self.aggregate(f, arg())
            }
            Func::DatapointCount => match arg() {
                Val::Ts(ts) => {
                    Ok(Val::Scalar(Some(ts.v.iter().filter(|p| p.is_some()).count() as f64)))
                }
                Val::Arr(arr) => {
                    let mut out = self.empty(String::new());
                    for (i, slot) in out.v.iter_mut().enumerate() {
                        let n = arr.iter().filter(|ts| point(ts, i).is_some()).count();
                        *slot = (n > 0).then_some(n as f64);
                    }
                    Ok(Val::Ts(out))
                }
                other => Err(wants(name, "a time series or an array of time series", &other)),
            },
            Func::MetricCount => match arg() {
                Val::Arr(arr) => Ok(Val::Scalar(Some(arr.len() as f64))),
                Val::Ts(_) => Ok(Val::Scalar(Some(1.0))),
                other => Err(wants(name, "an array of time series", &other)),
            },
            Func::Fill => {
                let target = arg();
                let filler = arg();
                self.fill(target, &filler)
            }
            Func::If => {
                let cond = arg();
                let yes = arg();
                let no = if args.len() > 2 { Some(arg()) } else { None };
                self.if_(cond, yes, no)
            }
            Func::Rate | Func::Diff | Func::DiffTime | Func::RunningSum => {
                let grid = self.grid;
                each_series(name, arg(), |ts| sequential(f, grid, ts))
            }
            Func::Period => match arg() {
                Val::Ts(_) => Ok(Val::Scalar(Some(f64::from(self.cx.period())))),
                other => Err(wants(name, "a time series", &other)),
            },
            Func::RemoveEmpty => match arg() {
                Val::Arr(arr) => Ok(Val::Arr(
                    arr.into_iter().filter(|ts| ts.v.iter().any(Option::is_some)).collect(),
                )),
                Val::Ts(ts) => Ok(Val::Arr(
                    Some(ts).filter(|ts| ts.v.iter().any(Option::is_some)).into_iter().collect(),
                )),
                other => Err(wants(name, "an array of time series", &other)),
            },
            Func::First | Func::Last => match arg() {
                Val::Arr(arr) => {
                    let pick = if f == Func::First {
                        arr.into_iter().next()
                    } else {
                        arr.into_iter().last()
                    };
                    Ok(Val::Ts(pick.unwrap_or_else(|| self.empty(String::new()))))
                }
                Val::Ts(ts) => Ok(Val::Ts(ts)),
                other => Err(wants(name, "an array of time series", &other)),
            },
            Func::TimeSeries => match arg() {
                Val::Scalar(s) => {
                    Ok(Val::Ts(Ts { label: String::new(), v: vec![s; self.grid.len()] }))
                }
                other => Err(wants(name, "a scalar", &other)),
            },
            Func::Minute
            | Func::Hour
            | Func::Day
            | Func::Date
            | Func::Month
            | Func::Year
            | Func::Epoch => match arg() {
                Val::Ts(_) => Ok(Val::Ts(Ts {
                    label: String::new(),
                    v: self.grid.iter().map(|&t| calendar(f, t)).collect(),
                })),
                other => Err(wants(name, "a time series", &other)),
            },
            Func::Sort => {
                let arr = arg();
                let stat = arg();
                let order = arg();
                let limit = if args.len() > 3 { Some(arg()) } else { None };
                sort(arr, stat, order, limit)
            }
            Func::Slice => {
                let arr = arg();
                let start = arg();
                let end = if args.len() > 2 { Some(arg()) } else { None };
                slice(arr, start, end)
            }
            Func::Concat => {
                let mut out = Vec::new();
                for _ in 0..args.len() {
                    match arg() {
                        Val::Ts(ts) => out.push(ts),
                        Val::Arr(arr) => out.extend(arr),
                        other => {
                            return Err(wants(
                                name,
                                "time series or arrays of time series",
                                &other,
                            ));
                        }
                    }
                }
                Ok(Val::Arr(out))
            }
        }
    }

    fn metrics(&self, filter: Option<&Node>) -> Result<Val, MathError> {
        let needle = match filter {
            Some(Node::Str(s)) => Some(s.as_str()),
            _ => None,
        };
        let mut arr = Vec::new();
        for id in self.cx.all_ids() {
            if needle.is_none_or(|n| id.contains(n)) {
                arr.extend(self.lookup(&id)?);
            }
        }
        Ok(Val::Arr(arr))
    }

    fn aggregate(&self, f: Func, v: Val) -> Result<Val, MathError> {
        match v {
            Val::Ts(ts) => {
                let points: Vec<f64> = ts.v.iter().flatten().copied().collect();
                Ok(Val::Scalar(stat(f, &points, points.len())))
            }
            Val::Arr(arr) => {
                let mut out = self.empty(String::new());
                let mut points = Vec::with_capacity(arr.len());
                for (i, slot) in out.v.iter_mut().enumerate() {
                    points.clear();
                    points.extend(arr.iter().filter_map(|ts| point(ts, i)));
                    // AVG of an array counts missing points as 0 (the guide says so).
                    let n = if f == Func::Avg { arr.len() } else { points.len() };
                    *slot = stat(f, &points, n);
                }
                Ok(Val::Ts(out))
            }
            other => Err(wants(func_name(f), "a time series or an array of time series", &other)),
        }
    }

    fn fill(&self, target: Val, filler: &Val) -> Result<Val, MathError> {
        enum How<'f> {
            Value(Option<f64>),
            Series(&'f Ts),
            Repeat,
            Linear,
        }
        let how = match filler {
            Val::Scalar(s) => How::Value(*s),
            Val::Ts(ts) => How::Series(ts),
            Val::Word("REPEAT") => How::Repeat,
            Val::Word("LINEAR") => How::Linear,
            other => {
                return Err(wants(
                    "FILL",
                    "a scalar, a time series, REPEAT or LINEAR as its second argument",
                    other,
                ));
            }
        };
        let grid = self.grid;
        each_series("FILL", target, |mut ts| {
            match &how {
                How::Value(s) => {
                    for p in ts.v.iter_mut() {
                        *p = p.or(*s);
                    }
                }
                How::Series(f) => {
                    for (i, p) in ts.v.iter_mut().enumerate() {
                        *p = p.or(point(f, i));
                    }
                }
                How::Repeat => {
                    let mut last = None;
                    for p in ts.v.iter_mut() {
                        match p {
                            Some(x) => last = Some(*x),
                            None => *p = last,
                        }
                    }
                }
                How::Linear => {
                    let mut prev: Option<(usize, f64)> = None;
                    for i in 0..ts.v.len() {
                        let Some(y) = ts.v[i] else { continue };
                        if let Some((j, x)) = prev {
                            let (tj, ti) = (time(grid, j), time(grid, i));
                            for k in j + 1..i {
                                let tk = time(grid, k);
                                let fraction = if ti == tj { 0.0 } else { (tk - tj) / (ti - tj) };
                                ts.v[k] = finite(x + (y - x) * fraction);
                            }
                        }
                        prev = Some((i, y));
                    }
                }
            }
            ts
        })
    }

    fn if_(&self, cond: Val, yes: Val, no: Option<Val>) -> Result<Val, MathError> {
        for branch in std::iter::once(&yes).chain(no.as_ref()) {
            if !matches!(branch, Val::Scalar(_) | Val::Ts(_)) {
                return Err(wants(
                    "IF",
                    "a scalar or a time series as its second and third arguments",
                    branch,
                ));
            }
        }
        match cond {
            Val::Scalar(c) => {
                let any_series = matches!(yes, Val::Ts(_)) || matches!(no, Some(Val::Ts(_)));
                let chosen = match c {
                    Some(c) if c != 0.0 => Some(yes),
                    Some(_) => no,
                    None => None,
                };
                match chosen {
                    Some(Val::Ts(ts)) => Ok(Val::Ts(ts)),
                    Some(Val::Scalar(s)) if !any_series => Ok(Val::Scalar(s)),
                    Some(Val::Scalar(s)) => {
                        Ok(Val::Ts(Ts { label: String::new(), v: vec![s; self.grid.len()] }))
                    }
                    _ if any_series => Ok(Val::Ts(self.empty(String::new()))),
                    _ => Ok(Val::Scalar(None)),
                }
            }
            Val::Ts(c) => {
                let mut out = self.empty(String::new());
                for (i, slot) in out.v.iter_mut().enumerate() {
                    *slot = match point(&c, i) {
                        None => None,
                        Some(x) if x != 0.0 => match &yes {
                            Val::Ts(ts) => Some(point(ts, i).unwrap_or(0.0)),
                            Val::Scalar(s) => *s,
                            _ => None,
                        },
                        Some(_) => match &no {
                            Some(Val::Ts(ts)) => point(ts, i),
                            Some(Val::Scalar(s)) => *s,
                            _ => None,
                        },
                    };
                }
                Ok(Val::Ts(out))
            }
            other => Err(wants("IF", "a scalar or a time series as its condition", &other)),
        }
    }
}

fn wants(func: &str, what: &str, got: &Val) -> MathError {
    invalid(format!("{func} takes {what}, not {}", got.kind()))
}

fn point(ts: &Ts, i: usize) -> Option<f64> {
    ts.v.get(i).copied().flatten()
}

fn time(grid: &[i64], i: usize) -> f64 {
    grid.get(i).copied().unwrap_or(0) as f64
}

/// A function applied to every point of a scalar, a series or each series of an array.
fn map_points(name: &str, v: Val, f: impl Fn(f64) -> Option<f64>) -> Result<Val, MathError> {
    match v {
        Val::Scalar(s) => Ok(Val::Scalar(s.and_then(&f))),
        other => each_series(name, other, |mut ts| {
            for p in ts.v.iter_mut() {
                *p = p.and_then(&f);
            }
            ts
        }),
    }
}

/// A series function applied to a series, or to each series of an array.
fn each_series(name: &str, v: Val, mut f: impl FnMut(Ts) -> Ts) -> Result<Val, MathError> {
    match v {
        Val::Ts(ts) => Ok(Val::Ts(f(ts))),
        Val::Arr(arr) => Ok(Val::Arr(arr.into_iter().map(f).collect())),
        other => Err(wants(name, "a time series or an array of time series", &other)),
    }
}

fn binary(op: Op, a: Val, b: Val) -> Result<Val, MathError> {
    match (a, b) {
        (Val::Scalar(x), Val::Scalar(y)) => Ok(Val::Scalar(match (x, y) {
            (Some(x), Some(y)) => apply(op, x, y),
            _ => None,
        })),
        (Val::Ts(mut ts), Val::Scalar(y)) => {
            for p in ts.v.iter_mut() {
                *p = match (*p, y) {
                    (Some(x), Some(y)) => apply(op, x, y),
                    _ => None,
                };
            }
            Ok(Val::Ts(ts))
        }
        (Val::Scalar(x), Val::Ts(mut ts)) => {
            for p in ts.v.iter_mut() {
                *p = match (x, *p) {
                    (Some(x), Some(y)) => apply(op, x, y),
                    _ => None,
                };
            }
            Ok(Val::Ts(ts))
        }
        (Val::Ts(mut a), Val::Ts(b)) => {
            for (i, p) in a.v.iter_mut().enumerate() {
                *p = match (*p, point(&b, i)) {
                    (None, None) => None,
                    // A point missing from one side counts as 0.
                    (x, y) => apply(op, x.unwrap_or(0.0), y.unwrap_or(0.0)),
                };
            }
            Ok(Val::Ts(a))
        }
        (Val::Arr(arr), other @ (Val::Scalar(_) | Val::Ts(_))) => {
            let mut out = Vec::with_capacity(arr.len());
            for ts in arr {
                let label = ts.label.clone();
                if let Val::Ts(mut r) = binary(op, Val::Ts(ts), other.clone())? {
                    r.label = label;
                    out.push(r);
                }
            }
            Ok(Val::Arr(out))
        }
        (other @ (Val::Scalar(_) | Val::Ts(_)), Val::Arr(arr)) => {
            let mut out = Vec::with_capacity(arr.len());
            for ts in arr {
                let label = ts.label.clone();
                if let Val::Ts(mut r) = binary(op, other.clone(), Val::Ts(ts))? {
                    r.label = label;
                    out.push(r);
                }
            }
            Ok(Val::Arr(out))
        }
        (Val::Arr(_), Val::Arr(_)) => Err(invalid(format!(
            "The operator {} cannot combine two arrays of time series",
            op_text(op)
        ))),
        (a, b) => Err(invalid(format!(
            "The operator {} cannot combine {} and {}",
            op_text(op),
            a.kind(),
            b.kind()
        ))),
    }
}

fn op_text(op: Op) -> &'static str {
    match op {
        Op::Add => "+",
        Op::Sub => "-",
        Op::Mul => "*",
        Op::Div => "/",
        Op::Pow => "^",
        Op::Lt => "<",
        Op::Le => "<=",
        Op::Gt => ">",
        Op::Ge => ">=",
        Op::Eq => "==",
        Op::Ne => "!=",
        Op::And => "AND",
        Op::Or => "OR",
    }
}

/// SUM/AVG/MIN/MAX/STDDEV of `points`; `n` is what AVG divides by. None without points.
fn stat(f: Func, points: &[f64], n: usize) -> Option<f64> {
    if points.is_empty() || n == 0 {
        return None;
    }
    let sum: f64 = points.iter().sum();
    let r = match f {
        Func::Sum => sum,
        Func::Avg => sum / n as f64,
        Func::Min => points.iter().copied().fold(f64::INFINITY, f64::min),
        Func::Max => points.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        _ => {
            let mean = sum / points.len() as f64;
            let var =
                points.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / points.len() as f64;
            var.sqrt()
        }
    };
    finite(r)
}

/// RATE, DIFF, DIFF_TIME and RUNNING_SUM: each point against the series' previous point.
fn sequential(f: Func, grid: &[i64], mut ts: Ts) -> Ts {
    let mut prev: Option<(f64, f64)> = None;
    let mut running = 0.0;
    for (i, p) in ts.v.iter_mut().enumerate() {
        let Some(y) = *p else { continue };
        let t = time(grid, i);
        *p = match f {
            Func::RunningSum => {
                running += y;
                finite(running)
            }
            _ => match prev {
                None => None,
                Some((pt, py)) => match f {
                    Func::Diff => finite(y - py),
                    Func::DiffTime => finite(t - pt),
                    _ if t == pt => None,
                    _ => finite((y - py) / (t - pt)),
                },
            },
        };
        prev = Some((t, y));
    }
    ts
}

/// MINUTE, HOUR, DAY (1 = Monday ... 7 = Sunday), DATE, MONTH, YEAR and EPOCH of a timestamp, in UTC.
fn calendar(f: Func, t: i64) -> Option<f64> {
    if f == Func::Epoch {
        return Some(t as f64);
    }
    let zoned = jiff::Timestamp::from_second(t).ok()?.to_zoned(jiff::tz::TimeZone::UTC);
    let n = match f {
        Func::Minute => i64::from(zoned.minute()),
        Func::Hour => i64::from(zoned.hour()),
        Func::Day => i64::from(zoned.weekday().to_monday_one_offset()),
        Func::Date => i64::from(zoned.day()),
        Func::Month => i64::from(zoned.month()),
        _ => i64::from(zoned.year()),
    };
    Some(n as f64)
}

fn sort(arr: Val, stat_word: Val, order: Val, limit: Option<Val>) -> Result<Val, MathError> {
    let Val::Arr(arr) = arr else {
        return Err(wants("SORT", "an array of time series first", &arr));
    };
    let f = match stat_word {
        Val::Word("SUM") => Func::Sum,
        Val::Word("AVG") => Func::Avg,
        Val::Word("MIN") => Func::Min,
        Val::Word("MAX") => Func::Max,
        other => return Err(wants("SORT", "AVG, MIN, MAX or SUM second", &other)),
    };
    let descending = match order {
        Val::Word("ASC") => false,
        Val::Word("DESC") => true,
        other => return Err(wants("SORT", "ASC or DESC third", &other)),
    };
    let limit = match limit {
        None => usize::MAX,
        Some(Val::Scalar(Some(n))) if n >= 0.0 => n as usize,
        Some(other) => return Err(wants("SORT", "a count of at least 0 fourth", &other)),
    };
    let mut keyed: Vec<(Option<f64>, Ts)> = arr
        .into_iter()
        .map(|ts| {
            let points: Vec<f64> = ts.v.iter().flatten().copied().collect();
            (stat(f, &points, points.len()), ts)
        })
        .collect();
    // Stable; series without points go last in either order.
    keyed.sort_by(|(a, _), (b, _)| match (a, b) {
        (Some(a), Some(b)) if descending => b.total_cmp(a),
        (Some(a), Some(b)) => a.total_cmp(b),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    Ok(Val::Arr(keyed.into_iter().map(|(_, ts)| ts).take(limit).collect()))
}

fn slice(arr: Val, start: Val, end: Option<Val>) -> Result<Val, MathError> {
    let Val::Arr(arr) = arr else {
        return Err(wants("SLICE", "an array of time series first", &arr));
    };
    let index = |v: Val| match v {
        Val::Scalar(Some(n)) if n >= 0.0 => Ok(n as usize),
        other => Err(wants("SLICE", "indexes of at least 0", &other)),
    };
    let start = index(start)?;
    let end = match end {
        Some(v) => index(v)?,
        None => usize::MAX,
    };
    Ok(Val::Arr(
        arr.into_iter()
            .enumerate()
            .filter(|(i, _)| *i >= start && *i < end)
            .map(|(_, ts)| ts)
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::{Expect, expect};

    /// 2024-01-01T00:00:00Z, a Monday.
    const T0: i64 = 1_704_067_200;

    struct Cx {
        queries: Vec<(String, Vec<Series>)>,
        grid: Vec<i64>,
    }

    impl Context for Cx {
        fn series(&self, id: &str) -> Option<Vec<Series>> {
            self.queries.iter().find(|(q, _)| q == id).map(|(_, s)| s.clone())
        }
        fn all_ids(&self) -> Vec<String> {
            // Ids `e<digits>` stand for expressions, which METRICS() leaves out.
            let expression =
                |id: &str| id.strip_prefix('e').is_some_and(|n| n.parse::<u32>().is_ok());
            self.queries.iter().map(|(id, _)| id.clone()).filter(|id| !expression(id)).collect()
        }
        fn grid(&self) -> &[i64] {
            &self.grid
        }
        fn period(&self) -> u32 {
            60
        }
    }

    /// Inputs are (id, label, points) with points like "1 2 - 4" ("-" = no data) on a
    /// 60-second grid from T0; an id given twice is an array (an expression's result).
    fn context(inputs: &[(&str, &str, &str)]) -> Cx {
        let len = inputs.iter().map(|(_, _, p)| p.split_whitespace().count()).max().unwrap_or(4);
        let grid: Vec<i64> = (0..len as i64).map(|i| T0 + 60 * i).collect();
        let mut queries: Vec<(String, Vec<Series>)> = Vec::new();
        for (id, label, points) in inputs {
            let values = points.split_whitespace().map(|p| p.parse::<f64>().ok()).collect();
            let series = Series { label: label.to_string(), timestamps: grid.clone(), values };
            match queries.iter_mut().find(|(q, _)| q == id) {
                Some((_, list)) => list.push(series),
                None => queries.push((id.to_string(), vec![series])),
            }
        }
        Cx { queries, grid }
    }

    fn show(result: Result<Vec<Series>, MathError>) -> String {
        match result {
            Err(e) => format!("error: {e}\n"),
            Ok(list) if list.is_empty() => "(no series)\n".to_string(),
            Ok(list) => list
                .iter()
                .map(|s| {
                    let points: Vec<String> = s
                        .values
                        .iter()
                        .map(|v| v.map_or("-".to_string(), |x| format!("{x}")))
                        .collect();
                    format!("[{}] {}\n", s.label, points.join(" "))
                })
                .collect(),
        }
    }

    fn run(expr: &str, inputs: &[(&str, &str, &str)]) -> String {
        let cx = context(inputs);
        show(parse(expr).and_then(|e| evaluate(&e, &cx)))
    }

    fn check(expr: &str, inputs: &[(&str, &str, &str)], expect: Expect) {
        expect.assert_eq(&run(expr, inputs));
    }

    /// Many expressions over the same inputs, one line each: `expr => result`.
    fn table(exprs: &[&str], inputs: &[(&str, &str, &str)], expect: Expect) {
        let mut out = String::new();
        for e in exprs {
            let r = run(e, inputs);
            let r = r.trim_end().replace('\n', " | ");
            out.push_str(&format!("{e} => {r}\n"));
        }
        expect.assert_eq(&out);
    }

    const M: &[(&str, &str, &str)] =
        &[("m1", "Errors", "30 20 0 0"), ("m2", "Requests", "20 - 20 -")];

    #[test]
    fn arithmetic_on_scalars_series_and_arrays() {
        table(
            &[
                "m1 + m2",
                "m1 - m2",
                "m1 * m2",
                "m2 / m1",
                "m1 / 10",
                "5 * m1",
                "-m1",
                "2 ^ 3 + m1",
                "m1 ^ 0.5",
                "-2 ^ 2 + m1 * 0",
                "(m1 + m2) * 2",
                "1 + 2 * 3 - 4 / 2 + m1 * 0",
                "m1 - AVG(m1)",
                "m1 / PERIOD(m1)",
                "[m1, m2] * 2",
                "100 / [m1, m2]",
                "SUM(-[m1, m2])",
                "[m1, m2] - m1",
                "METRICS() * 100",
                "[m1, m2] + [m1]",
                "m1 + \"x\"",
            ],
            M,
            expect![[r#"
                m1 + m2 => [] 50 20 20 0
                m1 - m2 => [] 10 20 -20 0
                m1 * m2 => [] 600 0 0 0
                m2 / m1 => [] 0.6666666666666666 0 - -
                m1 / 10 => [] 3 2 0 0
                5 * m1 => [] 150 100 0 0
                -m1 => [] -30 -20 0 0
                2 ^ 3 + m1 => [] 38 28 8 8
                m1 ^ 0.5 => [] 5.477225575051661 4.47213595499958 0 0
                -2 ^ 2 + m1 * 0 => [] -4 -4 -4 -4
                (m1 + m2) * 2 => [] 100 40 40 0
                1 + 2 * 3 - 4 / 2 + m1 * 0 => [] 5 5 5 5
                m1 - AVG(m1) => [] 17.5 7.5 -12.5 -12.5
                m1 / PERIOD(m1) => [] 0.5 0.3333333333333333 0 0
                [m1, m2] * 2 => [Errors] 60 40 0 0 | [Requests] 40 - 40 -
                100 / [m1, m2] => [Errors] 3.3333333333333335 5 - - | [Requests] 5 - 5 -
                SUM(-[m1, m2]) => [] -50 -20 -20 0
                [m1, m2] - m1 => [Errors] 0 0 0 0 | [Requests] -10 -20 20 0
                METRICS() * 100 => [Errors] 3000 2000 0 0 | [Requests] 2000 - 2000 -
                [m1, m2] + [m1] => error: The operator + cannot combine two arrays of time series
                m1 + "x" => error: The operator + cannot combine a time series and a string
            "#]],
        );
    }

    #[test]
    fn comparison_and_logic_as_the_guide_tabulates_them() {
        // The guide's own example: metric1 [30, 20, 0, 0], metric2 [20, -, 20, -].
        table(
            &[
                "(m1 < m2)",
                "(m1 >= 30)",
                "(m1 > 15 AND m2 > 15)",
                "m1 > 15 && m2 > 15",
                "m1 == 0 || m2 == 20",
                "m1 OR m2",
                "m1 != 20",
                "m1 <= 20",
                "NOT m1",
                "!(m1 > 10)",
                "m2 == 20",
                "(1 < 2) + m1 * 0",
            ],
            M,
            expect![[r#"
                (m1 < m2) => [] 0 0 1 0
                (m1 >= 30) => [] 1 0 0 0
                (m1 > 15 AND m2 > 15) => [] 1 0 0 0
                m1 > 15 && m2 > 15 => [] 1 0 0 0
                m1 == 0 || m2 == 20 => [] 1 0 1 1
                m1 OR m2 => [] 1 1 1 0
                m1 != 20 => [] 1 0 1 1
                m1 <= 20 => [] 0 1 1 1
                NOT m1 => [] 0 0 1 1
                !(m1 > 10) => [] 0 0 1 1
                m2 == 20 => [] 1 - 1 -
                (1 < 2) + m1 * 0 => [] 1 1 1 1
            "#]],
        );
    }

    #[test]
    fn division_by_zero_and_non_finite_results_drop_the_point() {
        table(
            &["m1 / m2", "m1 / 0", "LOG(m1)", "SQRT(m1 - 10)", "m1 ^ 1000", "0 / 0 + m1"],
            &[("m1", "", "100 0 -"), ("m2", "", "0 5 5")],
            expect![[r#"
                m1 / m2 => [] - 0 0
                m1 / 0 => [] - - -
                LOG(m1) => [] 4.605170185988092 - -
                SQRT(m1 - 10) => [] 9.486832980505138 - -
                m1 ^ 1000 => [] - 0 -
                0 / 0 + m1 => [] - - -
            "#]],
        );
    }

    #[test]
    fn if_follows_the_guides_tables() {
        let inputs = &[
            ("metric1", "", "1 1 0 0 -"),
            ("metric2", "", "30 - 0 0 30"),
            ("metric3", "", "0 0 20 - 20"),
        ];
        table(
            &[
                "IF(metric1, metric2, metric3)",
                "IF(metric1, 5, metric3)",
                "IF(metric1, metric2, 5)",
                "IF(metric1, metric2)",
                "IF(metric2 < 25, metric2)",
                "IF(metric2 > 10, 10, 2)",
                "IF(1, metric2, metric3)",
                "IF(0, metric2, metric3)",
                "IF(0, metric2)",
                "IF(1, 2, 3)",
                "IF(metric1)",
                "IF(METRICS(), 1, 0)",
                "IF(metric1, METRICS())",
            ],
            inputs,
            expect![[r#"
                IF(metric1, metric2, metric3) => [] 30 0 20 - -
                IF(metric1, 5, metric3) => [] 5 5 20 - -
                IF(metric1, metric2, 5) => [] 30 0 5 5 -
                IF(metric1, metric2) => [] 30 0 - - -
                IF(metric2 < 25, metric2) => [] - - 0 0 -
                IF(metric2 > 10, 10, 2) => [] 10 - 2 2 10
                IF(1, metric2, metric3) => [] 30 - 0 0 30
                IF(0, metric2, metric3) => [] 0 0 20 - 20
                IF(0, metric2) => [] - - - - -
                IF(1, 2, 3) => error: The expression returns a scalar; it must return a time series or an array of time series (TIME_SERIES(...) makes a series of a scalar)
                IF(metric1) => error: Syntax error at position 1: IF takes 2 to 3 arguments, not 1
                IF(METRICS(), 1, 0) => error: IF takes a scalar or a time series as its condition, not an array of time series
                IF(metric1, METRICS()) => error: IF takes a scalar or a time series as its second and third arguments, not an array of time series
            "#]],
        );
    }

    #[test]
    fn metrics_returns_the_metric_queries_and_filters_by_id() {
        let inputs = &[
            ("errors_4xx", "4XX", "1 2 3"),
            ("errors_5xx", "5XX", "- 1 -"),
            ("requests", "Requests", "10 20 30"),
            ("e1", "not a metric", "7 7 7"),
        ];
        table(
            &[
                "METRICS()",
                "METRICS(\"errors\")",
                "METRICS('5xx')",
                "SUM(METRICS(\"errors\"))",
                "SUM(METRICS(\"errors\")) / SUM(METRICS(\"requests\")) * 100",
                "SUM([METRICS(\"4xx\"), METRICS(\"5xx\")])",
                "METRICS(\"nothing\")",
                "SUM(METRICS(\"nothing\"))",
                "METRICS(5)",
            ],
            inputs,
            expect![[r#"
                METRICS() => [4XX] 1 2 3 | [5XX] - 1 - | [Requests] 10 20 30
                METRICS("errors") => [4XX] 1 2 3 | [5XX] - 1 -
                METRICS('5xx') => [5XX] - 1 -
                SUM(METRICS("errors")) => [] 1 3 3
                SUM(METRICS("errors")) / SUM(METRICS("requests")) * 100 => [] 10 15 10
                SUM([METRICS("4xx"), METRICS("5xx")]) => [] 1 3 3
                METRICS("nothing") => (no series)
                SUM(METRICS("nothing")) => [] - - -
                METRICS(5) => error: Syntax error at position 1: METRICS takes a string, e.g. METRICS("errors")
            "#]],
        );
    }

    #[test]
    fn aggregates_of_a_series_are_scalars_and_of_an_array_series() {
        let inputs = &[("m1", "a", "1 - 3 6"), ("m2", "b", "3 - - 2"), ("m3", "c", "- - - -")];
        table(
            &[
                "SUM([m1, m2])",
                "AVG([m1, m2])",
                "MIN([m1, m2])",
                "MAX([m1, m2])",
                "STDDEV([m1, m2])",
                "DATAPOINT_COUNT([m1, m2])",
                "SUM([m1, m2]) / DATAPOINT_COUNT([m1, m2])",
                "TIME_SERIES(SUM(m1))",
                "TIME_SERIES(AVG(m1))",
                "TIME_SERIES(MIN(m1))",
                "TIME_SERIES(MAX(m1))",
                "TIME_SERIES(STDDEV(m2))",
                "TIME_SERIES(DATAPOINT_COUNT(m1))",
                "TIME_SERIES(METRIC_COUNT(METRICS()))",
                "m1 / METRIC_COUNT(METRICS())",
                "TIME_SERIES(AVG(m3))",
                "TIME_SERIES(DATAPOINT_COUNT(m3))",
                "SUM(m1)",
                "SUM(5)",
                "SUM(m1, m2)",
            ],
            inputs,
            expect![[r#"
                SUM([m1, m2]) => [] 4 - 3 8
                AVG([m1, m2]) => [] 2 - 1.5 4
                MIN([m1, m2]) => [] 1 - 3 2
                MAX([m1, m2]) => [] 3 - 3 6
                STDDEV([m1, m2]) => [] 1 - 0 2
                DATAPOINT_COUNT([m1, m2]) => [] 2 - 1 2
                SUM([m1, m2]) / DATAPOINT_COUNT([m1, m2]) => [] 2 - 3 4
                TIME_SERIES(SUM(m1)) => [] 10 10 10 10
                TIME_SERIES(AVG(m1)) => [] 3.3333333333333335 3.3333333333333335 3.3333333333333335 3.3333333333333335
                TIME_SERIES(MIN(m1)) => [] 1 1 1 1
                TIME_SERIES(MAX(m1)) => [] 6 6 6 6
                TIME_SERIES(STDDEV(m2)) => [] 0.5 0.5 0.5 0.5
                TIME_SERIES(DATAPOINT_COUNT(m1)) => [] 3 3 3 3
                TIME_SERIES(METRIC_COUNT(METRICS())) => [] 3 3 3 3
                m1 / METRIC_COUNT(METRICS()) => [] 0.3333333333333333 - 1 2
                TIME_SERIES(AVG(m3)) => [] - - - -
                TIME_SERIES(DATAPOINT_COUNT(m3)) => [] 0 0 0 0
                SUM(m1) => error: The expression returns a scalar; it must return a time series or an array of time series (TIME_SERIES(...) makes a series of a scalar)
                SUM(5) => error: SUM takes a time series or an array of time series, not a scalar
                SUM(m1, m2) => error: Syntax error at position 1: SUM takes 1 arguments, not 2
            "#]],
        );
    }

    #[test]
    fn fill_with_a_value_a_series_repeat_and_linear() {
        let inputs =
            &[("m1", "A", "- 2 - - 8 -"), ("m2", "B", "- - 5 - - -"), ("m3", "C", "1 1 1 1 1 1")];
        table(
            &[
                "FILL(m1, 0)",
                "FILL(m1, MIN(m1))",
                "FILL(m1, m3)",
                "FILL(m1, REPEAT)",
                "FILL(m1, LINEAR)",
                "FILL(METRICS(), 0)",
                "FILL(METRICS(), m3 * 9)",
                "FILL(METRICS(), REPEAT)",
                "FILL([m1, m2], LINEAR)",
                "FILL(m1, AVG(m2 * 0 + m2))",
                "FILL(m1, METRICS())",
                "FILL(m1, ASC)",
                "FILL(5, 0)",
                "REPEAT + m1",
            ],
            inputs,
            expect![[r#"
                FILL(m1, 0) => [] 0 2 0 0 8 0
                FILL(m1, MIN(m1)) => [] 2 2 2 2 8 2
                FILL(m1, m3) => [] 1 2 1 1 8 1
                FILL(m1, REPEAT) => [] - 2 2 2 8 8
                FILL(m1, LINEAR) => [] - 2 4 6 8 -
                FILL(METRICS(), 0) => [A] 0 2 0 0 8 0 | [B] 0 0 5 0 0 0 | [C] 1 1 1 1 1 1
                FILL(METRICS(), m3 * 9) => [A] 9 2 9 9 8 9 | [B] 9 9 5 9 9 9 | [C] 1 1 1 1 1 1
                FILL(METRICS(), REPEAT) => [A] - 2 2 2 8 8 | [B] - - 5 5 5 5 | [C] 1 1 1 1 1 1
                FILL([m1, m2], LINEAR) => [A] - 2 4 6 8 - | [B] - - 5 - - -
                FILL(m1, AVG(m2 * 0 + m2)) => [] 5 2 5 5 8 5
                FILL(m1, METRICS()) => error: FILL takes a scalar, a time series, REPEAT or LINEAR as its second argument, not an array of time series
                FILL(m1, ASC) => error: FILL takes a scalar, a time series, REPEAT or LINEAR as its second argument, not a keyword
                FILL(5, 0) => error: FILL takes a time series or an array of time series, not a scalar
                REPEAT + m1 => error: The operator + cannot combine a keyword and a time series
            "#]],
        );
    }

    #[test]
    fn rate_diff_diff_time_and_running_sum_use_the_previous_point() {
        let inputs = &[("m1", "A", "10 40 - 100 100"), ("m2", "B", "- 1 2 - 4")];
        table(
            &[
                "RATE(m1)",
                "DIFF(m1)",
                "DIFF_TIME(m1)",
                "RUNNING_SUM(m1)",
                "RATE(METRICS())",
                "DIFF_TIME(METRICS())",
                "RUNNING_SUM([m1, m2])",
                "RATE(5)",
            ],
            inputs,
            expect![[r#"
                RATE(m1) => [] - 0.5 - 0.5 0
                DIFF(m1) => [] - 30 - 60 0
                DIFF_TIME(m1) => [] - 60 - 120 60
                RUNNING_SUM(m1) => [] 10 50 - 150 250
                RATE(METRICS()) => [A] - 0.5 - 0.5 0 | [B] - - 0.016666666666666666 - 0.016666666666666666
                DIFF_TIME(METRICS()) => [A] - 60 - 120 60 | [B] - - 60 - 120
                RUNNING_SUM([m1, m2]) => [A] 10 50 - 150 250 | [B] - 1 3 - 7
                RATE(5) => error: RATE takes a time series or an array of time series, not a scalar
            "#]],
        );
    }

    #[test]
    fn pointwise_functions() {
        let inputs = &[("m1", "A", "-1.5 0 2.25 100 -"), ("m2", "B", "1 10 - 0.1 1000")];
        table(
            &[
                "ABS(m1)",
                "CEIL(m1)",
                "FLOOR(m1)",
                "SQRT(m1)",
                "LOG(m2)",
                "LOG10(m2)",
                "EXP(m1 * 0 + 1)",
                "ABS(METRICS())",
                "MIN(ABS([m1, m2]))",
                "SUM(CEIL(METRICS()))",
                "TIME_SERIES(ABS(-3))",
            ],
            inputs,
            expect![[r#"
                ABS(m1) => [] 1.5 0 2.25 100 -
                CEIL(m1) => [] -1 0 3 100 -
                FLOOR(m1) => [] -2 0 2 100 -
                SQRT(m1) => [] - 0 1.5 10 -
                LOG(m2) => [] 0 2.302585092994046 - -2.3025850929940455 6.907755278982137
                LOG10(m2) => [] 0 1 - -1 3
                EXP(m1 * 0 + 1) => [] 2.718281828459045 2.718281828459045 2.718281828459045 2.718281828459045 -
                ABS(METRICS()) => [A] 1.5 0 2.25 100 - | [B] 1 10 - 0.1 1000
                MIN(ABS([m1, m2])) => [] 1 0 2.25 0.1 1000
                SUM(CEIL(METRICS())) => [] 0 10 3 101 1000
                TIME_SERIES(ABS(-3)) => [] 3 3 3 3 3
            "#]],
        );
    }

    #[test]
    fn arrays_remove_empty_first_last_sort_slice_concat() {
        let inputs = &[
            ("m1", "low", "1 1 -"),
            ("m2", "empty", "- - -"),
            ("m3", "high", "9 8 7"),
            ("m4", "mid", "5 - 5"),
        ];
        table(
            &[
                "REMOVE_EMPTY(METRICS())",
                "FIRST(METRICS())",
                "LAST(METRICS())",
                "FIRST(METRICS(\"zzz\"))",
                "SORT(METRICS(), AVG, DESC)",
                "SORT(METRICS(), MAX, ASC)",
                "SORT(METRICS(), SUM, DESC, 2)",
                "IF(FIRST(SORT(METRICS(), AVG, DESC)) > 8, 1, 0)",
                "SLICE(SORT(REMOVE_EMPTY(METRICS()), MIN, ASC), 1)",
                "SLICE(METRICS(), 1, 3)",
                "CONCAT([m1, m3], m4)",
                "SORT(METRICS(), MEDIAN, DESC)",
                "SORT(METRICS(), AVG, UP)",
                "SLICE(m1, 0)",
                "FIRST(5)",
            ],
            inputs,
            expect![[r#"
                REMOVE_EMPTY(METRICS()) => [low] 1 1 - | [high] 9 8 7 | [mid] 5 - 5
                FIRST(METRICS()) => [] 1 1 -
                LAST(METRICS()) => [] 5 - 5
                FIRST(METRICS("zzz")) => [] - - -
                SORT(METRICS(), AVG, DESC) => [high] 9 8 7 | [mid] 5 - 5 | [low] 1 1 - | [empty] - - -
                SORT(METRICS(), MAX, ASC) => [low] 1 1 - | [mid] 5 - 5 | [high] 9 8 7 | [empty] - - -
                SORT(METRICS(), SUM, DESC, 2) => [high] 9 8 7 | [mid] 5 - 5
                IF(FIRST(SORT(METRICS(), AVG, DESC)) > 8, 1, 0) => [] 1 0 0
                SLICE(SORT(REMOVE_EMPTY(METRICS()), MIN, ASC), 1) => [mid] 5 - 5 | [high] 9 8 7
                SLICE(METRICS(), 1, 3) => [empty] - - - | [high] 9 8 7
                CONCAT([m1, m3], m4) => [low] 1 1 - | [high] 9 8 7 | [mid] 5 - 5
                SORT(METRICS(), MEDIAN, DESC) => error: Syntax error at position 17: unexpected MEDIAN (ids start with a lowercase letter)
                SORT(METRICS(), AVG, UP) => error: Syntax error at position 22: unexpected UP (ids start with a lowercase letter)
                SLICE(m1, 0) => error: SLICE takes an array of time series first, not a time series
                FIRST(5) => error: FIRST takes an array of time series, not a scalar
            "#]],
        );
    }

    #[test]
    fn calendar_functions_read_the_grid_in_utc() {
        // Grid: Monday 2024-01-01 00:00, 00:01, 00:02 UTC (60-second periods).
        table(
            &[
                "MINUTE(m1)",
                "HOUR(m1)",
                "DAY(m1)",
                "DATE(m1)",
                "MONTH(m1)",
                "YEAR(m1)",
                "EPOCH(m1)",
                "IF(DAY(m1) < 6, m1)",
                "IF(MINUTE(m1) >= 1, m1)",
            ],
            &[("m1", "", "5 - 7")],
            expect![[r#"
                MINUTE(m1) => [] 0 1 2
                HOUR(m1) => [] 0 0 0
                DAY(m1) => [] 1 1 1
                DATE(m1) => [] 1 1 1
                MONTH(m1) => [] 1 1 1
                YEAR(m1) => [] 2024 2024 2024
                EPOCH(m1) => [] 1704067200 1704067260 1704067320
                IF(DAY(m1) < 6, m1) => [] 5 0 7
                IF(MINUTE(m1) >= 1, m1) => [] - 0 7
            "#]],
        );
        // Sunday 2024-01-07 23:59 UTC.
        let t = T0 + 6 * 86_400 + 23 * 3600 + 59 * 60;
        let got: Vec<Option<f64>> = [Func::Day, Func::Hour, Func::Minute, Func::Date]
            .into_iter()
            .map(|f| calendar(f, t))
            .collect();
        assert_eq!(got, vec![Some(7.0), Some(23.0), Some(59.0), Some(7.0)]);
        assert_eq!(calendar(Func::Year, i64::MAX), None);
    }

    #[test]
    fn labels_are_the_input_series_labels_for_arrays_and_empty_for_one_series() {
        let inputs = &[("m1", "Errors", "1 2"), ("m2", "Requests", "3 -")];
        check(
            "FILL(METRICS(), 0) * 2",
            inputs,
            expect![[r#"
                [Errors] 2 4
                [Requests] 6 0
            "#]],
        );
        check(
            "FIRST(METRICS())",
            inputs,
            expect![[r#"
            [] 1 2
        "#]],
        );
        check(
            "m2",
            inputs,
            expect![[r#"
            [] 3 -
        "#]],
        );
        check(
            "[m2]",
            inputs,
            expect![[r#"
            [Requests] 3 -
        "#]],
        );
    }

    #[test]
    fn an_id_can_name_an_expression_that_returned_an_array() {
        let inputs = &[("e1", "first", "1 2"), ("e1", "second", "3 4"), ("m1", "m", "10 10")];
        table(
            &["e1", "e1 + m1", "SUM(e1)", "m1", "METRICS()", "nope + 1"],
            inputs,
            expect![[r#"
                e1 => [first] 1 2 | [second] 3 4
                e1 + m1 => [first] 11 12 | [second] 13 14
                SUM(e1) => [] 4 6
                m1 => [] 10 10
                METRICS() => [m] 10 10
                nope + 1 => error: Unknown metric or expression id: nope
            "#]],
        );
    }

    #[test]
    fn series_off_the_grid_are_aligned_by_timestamp() {
        struct Sparse(Vec<i64>);
        impl Context for Sparse {
            fn series(&self, _: &str) -> Option<Vec<Series>> {
                Some(vec![Series {
                    label: "x".into(),
                    timestamps: vec![T0 + 60, T0 + 61, T0 + 180, T0 + 9999],
                    values: vec![Some(1.0), Some(2.0), Some(3.0)],
                }])
            }
            fn all_ids(&self) -> Vec<String> {
                vec!["m1".into()]
            }
            fn grid(&self) -> &[i64] {
                &self.0
            }
            fn period(&self) -> u32 {
                60
            }
        }
        let cx = Sparse((0..4).map(|i| T0 + 60 * i).collect());
        let got = parse("m1 * 2").and_then(|e| evaluate(&e, &cx));
        expect![[r#"
            [] - 2 - 6
        "#]]
        .assert_eq(&show(got));
    }

    #[test]
    fn parse_errors_name_the_position_or_the_function() {
        table(
            &[
                "",
                "   ",
                "m1 +",
                "m1 + * m2",
                "(m1 + m2",
                "m1 m2",
                "m1 # 2",
                "avg(m1)",
                "M1 + 1",
                "FOO(m1)",
                "FILL",
                "FILL(m1 0)",
                "[m1, ]",
                "METRICS(\"open",
                "1e999 + m1",
                "SEARCH('{AWS/EC2,InstanceId} MetricName=\"CPUUtilization\"', 'Average', 300)",
                "m1 + SEARCH(' {AWS/EC2} ', 'Sum')",
                "ANOMALY_DETECTION_BAND(m1, 2)",
                "INSIGHT_RULE_METRIC('rule', 'Sum')",
                "SERVICE_QUOTA(m1)",
                "LAMBDA('fn', m1)",
                "SELECT AVG(CPUUtilization) FROM SCHEMA(\"AWS/EC2\", InstanceId)",
                "m1 = 2",
                "m1 & m2",
            ],
            M,
            expect![[r#"
                 => error: Syntax error at position 1: the expression is empty
                    => error: Syntax error at position 4: the expression is empty
                m1 + => error: Syntax error at position 5: expected a value, found the end of the expression
                m1 + * m2 => error: Syntax error at position 6: expected a value, found *
                (m1 + m2 => error: Syntax error at position 9: expected ), found the end of the expression
                m1 m2 => error: Syntax error at position 4: unexpected m2
                m1 # 2 => error: Syntax error at position 4: unexpected character '#'
                avg(m1) => error: Unknown function avg (functions are written in uppercase)
                M1 + 1 => error: Syntax error at position 1: unexpected M1 (ids start with a lowercase letter)
                FOO(m1) => error: Unknown function FOO
                FILL => error: Syntax error at position 1: FILL needs its arguments in parentheses
                FILL(m1 0) => error: Syntax error at position 9: expected , or ), found 0
                [m1, ] => error: Syntax error at position 6: expected a value, found ]
                METRICS("open => error: Syntax error at position 9: the string is not closed
                1e999 + m1 => error: Syntax error at position 1: the number 1e999 is out of range
                SEARCH('{AWS/EC2,InstanceId} MetricName="CPUUtilization"', 'Average', 300) => error: Metric math search expressions (SEARCH) are not supported by Cumulo
                m1 + SEARCH(' {AWS/EC2} ', 'Sum') => error: Metric math search expressions (SEARCH) are not supported by Cumulo
                ANOMALY_DETECTION_BAND(m1, 2) => error: The metric math function ANOMALY_DETECTION_BAND is not supported by Cumulo
                INSIGHT_RULE_METRIC('rule', 'Sum') => error: The metric math function INSIGHT_RULE_METRIC is not supported by Cumulo
                SERVICE_QUOTA(m1) => error: The metric math function SERVICE_QUOTA is not supported by Cumulo
                LAMBDA('fn', m1) => error: The metric math function LAMBDA is not supported by Cumulo
                SELECT AVG(CPUUtilization) FROM SCHEMA("AWS/EC2", InstanceId) => error: Metrics Insights queries (SELECT ...) are not supported by Cumulo
                m1 = 2 => error: Syntax error at position 4: unexpected character '='
                m1 & m2 => error: Syntax error at position 4: unexpected character '&'
            "#]],
        );
    }

    #[test]
    fn numbers_and_ids() {
        table(
            &[
                "m1 * 0 + 1.5",
                "m1 * 0 + .25",
                "m1 * 0 + 2e3",
                "m1 * 0 + 1E-2",
                "error_rate_2 + 0",
                "m1*2",
                "\tm1\n*\n2 ",
            ],
            &[("m1", "", "1 -"), ("error_rate_2", "", "3 4")],
            expect![[r#"
                m1 * 0 + 1.5 => [] 1.5 -
                m1 * 0 + .25 => [] 0.25 -
                m1 * 0 + 2e3 => [] 2000 -
                m1 * 0 + 1E-2 => [] 0.01 -
                error_rate_2 + 0 => [] 3 4
                m1*2 => [] 2 -
                	m1
                *
                2  => [] 2 -
            "#]],
        );
    }

    #[test]
    fn references_and_the_metrics_function() {
        let show = |e: &str| match parse(e) {
            Ok(x) => format!("{e} => {:?} metrics={}\n", x.references(), x.uses_metrics_function()),
            Err(err) => format!("{e} => error: {err}\n"),
        };
        let out: String = [
            "m1 + m2 * m1",
            "e1 - MIN(e1)",
            "SUM(METRICS(\"errors\")) / requests",
            "FILL(METRICS(), REPEAT)",
            "TIME_SERIES(10)",
        ]
        .iter()
        .map(|e| show(e))
        .collect();
        expect![[r#"
            m1 + m2 * m1 => ["m1", "m2"] metrics=false
            e1 - MIN(e1) => ["e1"] metrics=false
            SUM(METRICS("errors")) / requests => ["requests"] metrics=true
            FILL(METRICS(), REPEAT) => [] metrics=true
            TIME_SERIES(10) => [] metrics=false
        "#]]
        .assert_eq(&out);
    }

    #[test]
    fn limits_bound_length_and_nesting() {
        let long = format!("m1{}", " + m1".repeat(409));
        assert_eq!(long.chars().count(), 2047);
        let ok = parse(&long).and_then(|e| evaluate(&e, &context(&[("m1", "", "1 -")])));
        let too_long = format!("{long} "); // 2048 is still allowed
        let way_too_long = format!("{long}+m1");
        let nested_ok = format!("{}m1{}", "(".repeat(63), ")".repeat(63));
        let nested_deep = format!("{}m1{}", "(".repeat(64), ")".repeat(64));
        let negations = format!("{}m1", "-".repeat(100));
        let powers = format!("m1{}", "^1".repeat(100));
        let out = [
            show(ok),
            show(parse(&too_long).map(|_| Vec::new())),
            show(parse(&way_too_long).map(|_| Vec::new())),
            show(parse(&nested_ok).and_then(|e| evaluate(&e, &context(&[("m1", "", "1")])))),
            show(parse(&nested_deep).map(|_| Vec::new())),
            show(parse(&negations).map(|_| Vec::new())),
            show(parse(&powers).map(|_| Vec::new())),
        ]
        .concat();
        expect![[r#"
            [] 410 -
            (no series)
            error: The expression is 2050 characters long; the maximum is 2048
            [] 1
            error: Syntax error at position 65: the expression nests more than 64 levels deep
            error: Syntax error at position 65: the expression nests more than 64 levels deep
            error: Syntax error at position 130: the expression nests more than 64 levels deep
        "#]]
        .assert_eq(&out);
    }

    /// The deepest and the longest expressions the limits let through parse and evaluate on a
    /// thread with half of tokio's default worker stack (2 MiB), in a debug build.
    #[test]
    fn the_limits_keep_the_stack_small() {
        let worst = || {
            let chain = format!("1{}", "+1".repeat(1017));
            let calls = format!("{}m1{}", "ABS(".repeat(63), ")".repeat(63));
            let arrays = format!("SUM({}m1{})", "[".repeat(62), "]".repeat(62));
            let mixed = format!("{}m1{}", "-(1+".repeat(31), ")".repeat(31));
            let cx = context(&[("m1", "", "1 2")]);
            [format!("TIME_SERIES({chain})"), calls, arrays, mixed]
                .iter()
                .map(|e| {
                    let r = parse(e).and_then(|x| evaluate(&x, &cx));
                    format!("{} chars: {}", e.chars().count(), show(r))
                })
                .collect::<String>()
        };
        let out = std::thread::Builder::new().stack_size(1 << 20).spawn(worst).map(|h| h.join());
        let Ok(Ok(out)) = out else {
            panic!("the worst-case expressions overflowed a 1 MiB stack");
        };
        expect![[r#"
            2048 chars: [] 1018 1018
            317 chars: [] 1 2
            131 chars: [] 1 2
            157 chars: [] -2 -3
        "#]]
        .assert_eq(&out);
    }

    /// Every string of up to three tokens from a hostile alphabet parses or fails cleanly, and
    /// every one that parses evaluates or fails cleanly (no panic anywhere).
    #[test]
    fn no_input_panics() {
        let alphabet = [
            "m1",
            "e1",
            "x",
            "(",
            ")",
            "[",
            "]",
            ",",
            "-",
            "+",
            "/",
            "0",
            "1e308",
            "^",
            "!",
            "<=",
            "AND",
            "NOT",
            "\"",
            "'a'",
            "METRICS(",
            "FILL(",
            "IF(",
            "SORT(",
            "REPEAT",
            "SLICE(",
            "SUM(",
            "RATE(",
            "TIME_SERIES(",
            "FIRST(",
            "é",
            "SEARCH(",
        ];
        let cx = context(&[("m1", "a", "1 - 0"), ("e1", "b", "- 2 3"), ("e1", "c", "0 0 0")]);
        let (mut parsed, mut evaluated, mut total) = (0, 0, 0);
        for a in alphabet {
            for b in alphabet {
                for c in alphabet {
                    for text in
                        [format!("{a}{b}{c}"), format!("{a}{b}{c})"), format!("{a}{b}{c}))")]
                    {
                        total += 1;
                        if let Ok(e) = parse(&text) {
                            parsed += 1;
                            if evaluate(&e, &cx).is_ok() {
                                evaluated += 1;
                            }
                        }
                    }
                }
            }
        }
        expect!["total=98304 parsed=1172 evaluated=211"]
            .assert_eq(&format!("total={total} parsed={parsed} evaluated={evaluated}"));
    }
}
