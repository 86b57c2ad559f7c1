//! CloudWatch Logs Insights for the common commands: `fields` / `display`, `filter` (`=`,
//! `!=`, `<`, `<=`, `>`, `>=`, `like /regex/` or `like "text"`, `=~`, `in [..]`, `and`, `or`,
//! `not`, parentheses, `ispresent(f)`), `stats` (`count(*)`, `count(f)`, `count_distinct`,
//! `avg`, `sum`, `min`, `max`, with `as` and `by` fields or `bin(5m)`), `sort`, `limit`, and
//! `parse @message "glob * text" as a, b`. Anything else is a MalformedQueryException naming
//! the command. Queries run to completion when they start; their results stay for
//! GetQueryResults (the last 100 queries).
//!
//! Fields: `@timestamp`, `@message`, `@logStream`, `@log`, `@ingestionTime`, `@ptr`, and the
//! members of JSON messages (nested ones dotted: `a.b`), as Insights discovers them.

use std::collections::{BTreeMap, HashSet, VecDeque};

use fancy_regex::Regex;
use serde_json::Value as Json;

use crate::events::Stored;
use crate::{Logs, LogsError};

const KEPT_QUERIES: usize = 100;
pub const MAX_RESULTS: usize = 10_000;

fn malformed<T>(msg: impl Into<String>) -> Result<T, LogsError> {
    Err(LogsError::MalformedQuery(msg.into()))
}

/// A finished query.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryResult {
    pub id: String,
    pub query: String,
    pub groups: Vec<String>,
    /// Complete or Cancelled.
    pub status: String,
    pub created_ms: i64,
    /// Rows of (field, value).
    pub rows: Vec<Vec<(String, String)>>,
    pub records_matched: f64,
    pub records_scanned: f64,
    pub bytes_scanned: f64,
}

#[derive(Default)]
pub(crate) struct Queries {
    results: BTreeMap<String, QueryResult>,
    order: VecDeque<String>,
}

/// StartQuery.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StartQuery {
    pub groups: Vec<String>,
    /// Epoch seconds, both inclusive.
    pub start_time: i64,
    pub end_time: i64,
    pub query: String,
    pub limit: Option<usize>,
}

#[derive(Clone, Debug, PartialEq)]
enum Val {
    Str(String),
    Num(f64),
}

impl Val {
    fn num(&self) -> Option<f64> {
        match self {
            Val::Num(n) => Some(*n),
            Val::Str(s) => s.trim().parse().ok(),
        }
    }

    fn text(&self) -> String {
        match self {
            Val::Str(s) => s.clone(),
            Val::Num(n) => number_text(*n),
        }
    }
}

fn number_text(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 { format!("{}", n as i64) } else { format!("{n}") }
}

type Record = BTreeMap<String, Val>;

// ---- lexing ----

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Num(f64),
    Str(String),
    Regex(String),
    Op(&'static str),
    Open,
    Close,
    Comma,
    LBracket,
    RBracket,
    Star,
}

fn lex(s: &str) -> Result<Vec<Tok>, LogsError> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => (out.push(Tok::Open), i += 1).1,
            ')' => (out.push(Tok::Close), i += 1).1,
            ',' => (out.push(Tok::Comma), i += 1).1,
            '[' => (out.push(Tok::LBracket), i += 1).1,
            ']' => (out.push(Tok::RBracket), i += 1).1,
            '*' => (out.push(Tok::Star), i += 1).1,
            '=' if next == Some('~') => (out.push(Tok::Op("=~")), i += 2).1,
            '=' => (out.push(Tok::Op("=")), i += if next == Some('=') { 2 } else { 1 }).1,
            '!' if next == Some('=') => (out.push(Tok::Op("!=")), i += 2).1,
            '<' if next == Some('=') => (out.push(Tok::Op("<=")), i += 2).1,
            '>' if next == Some('=') => (out.push(Tok::Op(">=")), i += 2).1,
            '<' => (out.push(Tok::Op("<")), i += 1).1,
            '>' => (out.push(Tok::Op(">")), i += 1).1,
            '"' | '\'' => {
                let mut s = String::new();
                let mut j = i + 1;
                loop {
                    match chars.get(j) {
                        None => return malformed("a quoted string is not closed"),
                        Some('\\') if j + 1 < chars.len() => {
                            s.push(chars[j + 1]);
                            j += 2;
                        }
                        Some(ch) if *ch == c => break,
                        Some(ch) => {
                            s.push(*ch);
                            j += 1;
                        }
                    }
                }
                out.push(Tok::Str(s));
                i = j + 1;
            }
            '/' => {
                let mut s = String::new();
                let mut j = i + 1;
                loop {
                    match chars.get(j) {
                        None => return malformed("a regular expression is not closed"),
                        Some('\\') if chars.get(j + 1) == Some(&'/') => {
                            s.push('/');
                            j += 2;
                        }
                        Some('/') => break,
                        Some(ch) => {
                            s.push(*ch);
                            j += 1;
                        }
                    }
                }
                out.push(Tok::Regex(s));
                i = j + 1;
            }
            '`' => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|ch| *ch == '`')
                    .ok_or_else(|| LogsError::MalformedQuery("a ` is not closed".into()))?;
                out.push(Tok::Ident(chars[i + 1..i + 1 + end].iter().collect()));
                i += end + 2;
            }
            c if c.is_ascii_digit() || (c == '-' && next.is_some_and(|n| n.is_ascii_digit())) => {
                let start = i;
                i += 1;
                while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                    i += 1;
                }
                // A duration (5m) is an identifier for bin().
                if i < chars.len() && chars[i].is_ascii_alphabetic() {
                    while i < chars.len() && chars[i].is_ascii_alphanumeric() {
                        i += 1;
                    }
                    out.push(Tok::Ident(chars[start..i].iter().collect()));
                } else {
                    let text: String = chars[start..i].iter().collect();
                    out.push(Tok::Num(text.parse().map_err(|_| {
                        LogsError::MalformedQuery(format!("{text} is not a number"))
                    })?));
                }
            }
            c if c.is_alphanumeric() || c == '@' || c == '_' || c == '$' => {
                let start = i;
                let part_of_name = |i: usize| {
                    let c = chars[i];
                    let dash_inside = chars.get(i + 1).is_some_and(|n| n.is_alphanumeric());
                    c.is_alphanumeric() || "@_.$".contains(c) || (c == '-' && dash_inside)
                };
                while i < chars.len() && part_of_name(i) {
                    i += 1;
                }
                out.push(Tok::Ident(chars[start..i].iter().collect()));
            }
            other => return malformed(format!("unexpected symbol found {other}")),
        }
    }
    Ok(out)
}

/// Splits a query into its commands on `|` outside strings and regexes.
fn commands(q: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut prev = ' ';
    for c in q.chars() {
        match quote {
            Some(qc) if c == qc && prev != '\\' => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' || c == '`' => quote = Some(c),
            None if c == '/' && !cur.trim_end().ends_with(|p: char| p.is_alphanumeric()) => {
                quote = Some('/')
            }
            None if c == '|' => {
                out.push(std::mem::take(&mut cur));
                prev = c;
                continue;
            }
            None => {}
        }
        cur.push(c);
        prev = c;
    }
    out.push(cur);
    out.into_iter().map(|c| c.trim().to_string()).filter(|c| !c.is_empty()).collect()
}

// ---- the query ----

#[derive(Debug)]
enum Expr {
    Field(String),
    Lit(Val),
    Cmp(Box<Expr>, &'static str, Box<Expr>),
    Like(Box<Expr>, Matcher, bool),
    In(Box<Expr>, Vec<Val>, bool),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    IsPresent(String),
}

#[derive(Debug)]
enum Matcher {
    Regex(Regex),
    Contains(String),
}

#[derive(Debug)]
enum Agg {
    Count(Option<String>),
    CountDistinct(String),
    Avg(String),
    Sum(String),
    Min(String),
    Max(String),
}

#[derive(Debug)]
enum GroupBy {
    Field(String),
    Bin(i64),
}

#[derive(Debug)]
enum Command {
    Fields(Vec<String>),
    Filter(Expr),
    Stats { aggs: Vec<(Agg, String)>, by: Vec<(GroupBy, String)> },
    Sort(Vec<(String, bool)>),
    Limit(usize),
    Parse { field: String, regex: Regex, names: Vec<String> },
}

struct P {
    toks: Vec<Tok>,
    pos: usize,
}

impl P {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn keyword(&mut self, k: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Ident(i)) if i.eq_ignore_ascii_case(k)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, t: Tok) -> Result<(), LogsError> {
        match self.next() {
            Some(got) if got == t => Ok(()),
            got => malformed(format!("expected {t:?}, found {got:?}")),
        }
    }

    fn ident(&mut self) -> Result<String, LogsError> {
        match self.next() {
            Some(Tok::Ident(i)) => Ok(i),
            got => malformed(format!("expected a field name, found {got:?}")),
        }
    }

    fn done(&self) -> Result<(), LogsError> {
        match self.peek() {
            None => Ok(()),
            Some(t) => malformed(format!("unexpected {t:?}")),
        }
    }

    fn or(&mut self) -> Result<Expr, LogsError> {
        let mut e = self.and()?;
        while self.keyword("or") {
            e = Expr::Or(Box::new(e), Box::new(self.and()?));
        }
        Ok(e)
    }

    fn and(&mut self) -> Result<Expr, LogsError> {
        let mut e = self.not()?;
        while self.keyword("and") {
            e = Expr::And(Box::new(e), Box::new(self.not()?));
        }
        Ok(e)
    }

    fn not(&mut self) -> Result<Expr, LogsError> {
        if self.keyword("not") {
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        self.primary()
    }

    fn operand(&mut self) -> Result<Expr, LogsError> {
        match self.next() {
            Some(Tok::Num(n)) => Ok(Expr::Lit(Val::Num(n))),
            Some(Tok::Str(s)) => Ok(Expr::Lit(Val::Str(s))),
            Some(Tok::Ident(i)) if i.eq_ignore_ascii_case("ispresent") => {
                self.expect(Tok::Open)?;
                let f = self.ident()?;
                self.expect(Tok::Close)?;
                Ok(Expr::IsPresent(f))
            }
            Some(Tok::Ident(i)) if self.peek() == Some(&Tok::Open) => {
                malformed(format!("the function {i} is not supported locally"))
            }
            Some(Tok::Ident(i)) => Ok(Expr::Field(i)),
            got => malformed(format!("expected a field or a value, found {got:?}")),
        }
    }

    fn primary(&mut self) -> Result<Expr, LogsError> {
        if self.peek() == Some(&Tok::Open) {
            self.pos += 1;
            let e = self.or()?;
            self.expect(Tok::Close)?;
            return Ok(e);
        }
        let left = self.operand()?;
        let negated = {
            let save = self.pos;
            if self.keyword("not") {
                if matches!(self.peek(), Some(Tok::Ident(i)) if i.eq_ignore_ascii_case("like") || i.eq_ignore_ascii_case("in"))
                {
                    true
                } else {
                    self.pos = save;
                    false
                }
            } else {
                false
            }
        };
        if self.keyword("like") {
            return Ok(Expr::Like(Box::new(left), self.matcher()?, negated));
        }
        if self.keyword("in") {
            self.expect(Tok::LBracket)?;
            let mut vals = Vec::new();
            loop {
                match self.next() {
                    Some(Tok::Num(n)) => vals.push(Val::Num(n)),
                    Some(Tok::Str(s)) => vals.push(Val::Str(s)),
                    Some(Tok::RBracket) => break,
                    Some(Tok::Comma) => {}
                    got => return malformed(format!("expected a value in [..], found {got:?}")),
                }
            }
            return Ok(Expr::In(Box::new(left), vals, negated));
        }
        match self.peek() {
            Some(Tok::Op("=~")) => {
                self.pos += 1;
                Ok(Expr::Like(Box::new(left), self.matcher()?, false))
            }
            Some(Tok::Op(op)) => {
                let op = *op;
                self.pos += 1;
                let right = self.operand()?;
                Ok(Expr::Cmp(Box::new(left), op, Box::new(right)))
            }
            _ => Ok(left),
        }
    }

    fn matcher(&mut self) -> Result<Matcher, LogsError> {
        match self.next() {
            Some(Tok::Regex(r)) => Regex::new(&r)
                .map(Matcher::Regex)
                .map_err(|e| LogsError::MalformedQuery(format!("invalid regular expression: {e}"))),
            Some(Tok::Str(s)) => Ok(Matcher::Contains(s)),
            got => malformed(format!("expected /regex/ or a string after like, found {got:?}")),
        }
    }
}

fn duration_ms(s: &str) -> Option<i64> {
    let split = s.find(|c: char| c.is_ascii_alphabetic())?;
    let n: i64 = s[..split].parse().ok()?;
    let unit = match &s[split..] {
        "ms" => 1,
        "s" | "sec" | "second" | "seconds" => 1_000,
        "m" | "min" | "minute" | "minutes" => 60_000,
        "h" | "hr" | "hour" | "hours" => 3_600_000,
        "d" | "day" | "days" => 86_400_000,
        _ => return None,
    };
    (n > 0).then_some(n * unit)
}

fn parse_command(text: &str) -> Result<Command, LogsError> {
    let (name, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    let mut p = P { toks: lex(rest)?, pos: 0 };
    let cmd = match name.to_ascii_lowercase().as_str() {
        "fields" | "display" => {
            let mut fields = vec![p.ident()?];
            while p.peek() == Some(&Tok::Comma) {
                p.pos += 1;
                fields.push(p.ident()?);
            }
            Command::Fields(fields)
        }
        "filter" => Command::Filter(p.or()?),
        "stats" => {
            let mut aggs = Vec::new();
            loop {
                let f = p.ident()?.to_ascii_lowercase();
                if !["count", "count_distinct", "avg", "sum", "min", "max"].contains(&f.as_str()) {
                    return malformed(format!(
                        "the aggregation {f} is not supported locally (count, count_distinct, avg, sum, min, max are)"
                    ));
                }
                p.expect(Tok::Open)?;
                let arg = match p.next() {
                    Some(Tok::Star) => None,
                    Some(Tok::Ident(i)) => Some(i),
                    got => return malformed(format!("expected a field in {f}(), found {got:?}")),
                };
                p.expect(Tok::Close)?;
                let label = format!("{f}({})", arg.as_deref().unwrap_or("*"));
                let field = |arg: Option<String>| {
                    arg.ok_or_else(|| LogsError::MalformedQuery(format!("{f}(*) is not valid")))
                };
                let agg = match f.as_str() {
                    "count" => Agg::Count(arg),
                    "count_distinct" => Agg::CountDistinct(field(arg)?),
                    "avg" => Agg::Avg(field(arg)?),
                    "sum" => Agg::Sum(field(arg)?),
                    "min" => Agg::Min(field(arg)?),
                    "max" => Agg::Max(field(arg)?),
                    other => {
                        return malformed(format!(
                            "the aggregation {other} is not supported locally (count, count_distinct, avg, sum, min, max are)"
                        ));
                    }
                };
                let label = if p.keyword("as") { p.ident()? } else { label };
                aggs.push((agg, label));
                if p.peek() == Some(&Tok::Comma) {
                    p.pos += 1;
                    continue;
                }
                break;
            }
            let mut by = Vec::new();
            if p.keyword("by") {
                loop {
                    let i = p.ident()?;
                    let g = if i.eq_ignore_ascii_case("bin") {
                        p.expect(Tok::Open)?;
                        let d = p.ident()?;
                        p.expect(Tok::Close)?;
                        let ms = duration_ms(&d).ok_or_else(|| {
                            LogsError::MalformedQuery(format!("{d} is not a bin duration"))
                        })?;
                        (GroupBy::Bin(ms), format!("bin({d})"))
                    } else {
                        (GroupBy::Field(i.clone()), i)
                    };
                    let g = if p.keyword("as") { (g.0, p.ident()?) } else { g };
                    by.push(g);
                    if p.peek() == Some(&Tok::Comma) {
                        p.pos += 1;
                        continue;
                    }
                    break;
                }
            }
            Command::Stats { aggs, by }
        }
        "sort" => {
            let mut keys = Vec::new();
            loop {
                let f = p.ident()?;
                let desc = if p.keyword("desc") {
                    true
                } else {
                    p.keyword("asc");
                    false
                };
                keys.push((f, desc));
                if p.peek() == Some(&Tok::Comma) {
                    p.pos += 1;
                    continue;
                }
                break;
            }
            Command::Sort(keys)
        }
        "limit" => match p.next() {
            Some(Tok::Num(n)) if n >= 1.0 && n.fract() == 0.0 => {
                Command::Limit((n as usize).min(MAX_RESULTS))
            }
            got => return malformed(format!("limit takes a positive number, found {got:?}")),
        },
        "parse" => {
            let field = p.ident()?;
            let (regex, names) = match p.next() {
                Some(Tok::Str(glob)) => {
                    let mut re = String::new();
                    for (i, part) in glob.split('*').enumerate() {
                        if i > 0 {
                            re.push_str("(.*?)");
                        }
                        re.push_str(&fancy_regex::escape(part));
                    }
                    if !p.keyword("as") {
                        return malformed("parse with a glob pattern needs `as` and field names");
                    }
                    let mut names = vec![p.ident()?];
                    while p.peek() == Some(&Tok::Comma) {
                        p.pos += 1;
                        names.push(p.ident()?);
                    }
                    if names.len() != glob.matches('*').count() {
                        return malformed("parse names as many fields as the pattern has *");
                    }
                    (re, names)
                }
                got => {
                    return malformed(format!(
                        "parse takes a quoted glob pattern locally, found {got:?}"
                    ));
                }
            };
            let regex = Regex::new(&regex)
                .map_err(|e| LogsError::MalformedQuery(format!("invalid parse pattern: {e}")))?;
            Command::Parse { field, regex, names }
        }
        other => {
            return malformed(format!(
                "unexpected symbol found {other} at line 1: the command {other} is not supported locally (fields, display, filter, stats, sort, limit, parse are)"
            ));
        }
    };
    p.done()?;
    Ok(cmd)
}

fn parse_query(q: &str) -> Result<Vec<Command>, LogsError> {
    let cmds = commands(q);
    if cmds.is_empty() {
        return malformed("the query is empty");
    }
    cmds.iter().map(|c| parse_command(c)).collect()
}

/// Checks a query string (what StartQuery refuses before running anything).
pub fn check(q: &str) -> Result<(), LogsError> {
    parse_query(q).map(|_| ())
}

// ---- evaluation ----

fn get<'a>(r: &'a Record, f: &str) -> Option<&'a Val> {
    r.get(f)
}

fn eval(e: &Expr, r: &Record) -> Option<Val> {
    match e {
        Expr::Field(f) => get(r, f).cloned(),
        Expr::Lit(v) => Some(v.clone()),
        _ => Some(Val::Num(if truth(e, r) { 1.0 } else { 0.0 })),
    }
}

fn compare(a: &Val, b: &Val) -> std::cmp::Ordering {
    match (a.num(), b.num()) {
        (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal),
        _ => a.text().cmp(&b.text()),
    }
}

fn truth(e: &Expr, r: &Record) -> bool {
    use std::cmp::Ordering::*;
    match e {
        Expr::And(a, b) => truth(a, r) && truth(b, r),
        Expr::Or(a, b) => truth(a, r) || truth(b, r),
        Expr::Not(a) => !truth(a, r),
        Expr::IsPresent(f) => r.contains_key(f),
        Expr::Field(f) => get(r, f).is_some_and(|v| v.num() != Some(0.0) && v.text() != "false"),
        Expr::Lit(v) => v.num() != Some(0.0),
        Expr::Like(a, m, negated) => {
            let Some(v) = eval(a, r) else { return false };
            let t = v.text();
            let hit = match m {
                Matcher::Regex(re) => re.is_match(&t).unwrap_or(false),
                Matcher::Contains(s) => t.contains(s.as_str()),
            };
            hit != *negated
        }
        Expr::In(a, vals, negated) => {
            let Some(v) = eval(a, r) else { return false };
            vals.iter().any(|x| compare(&v, x) == Equal) != *negated
        }
        Expr::Cmp(a, op, b) => {
            let (Some(x), Some(y)) = (eval(a, r), eval(b, r)) else { return false };
            let o = compare(&x, &y);
            match *op {
                "=" => o == Equal,
                "!=" => o != Equal,
                "<" => o == Less,
                "<=" => o != Greater,
                ">" => o == Greater,
                ">=" => o != Less,
                _ => false,
            }
        }
    }
}

/// `2026-01-01 00:00:00.000`, as Insights writes times.
pub fn insights_time(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => t.strftime("%Y-%m-%d %H:%M:%S%.3f").to_string(),
        Err(_) => ms.to_string(),
    }
}

fn flatten(prefix: &str, v: &Json, out: &mut Record, depth: usize) {
    if depth > 16 {
        return;
    }
    match v {
        Json::Object(m) => {
            for (k, v) in m {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(&key, v, out, depth + 1);
            }
        }
        Json::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                flatten(&format!("{prefix}.{i}"), v, out, depth + 1);
            }
        }
        Json::Number(n) => {
            out.entry(prefix.to_string()).or_insert(Val::Num(n.as_f64().unwrap_or(0.0)));
        }
        Json::String(s) => {
            out.entry(prefix.to_string()).or_insert(Val::Str(s.clone()));
        }
        Json::Bool(b) => {
            out.entry(prefix.to_string()).or_insert(Val::Str(b.to_string()));
        }
        Json::Null => {}
    }
}

fn record(account: &str, group: &str, e: &Stored) -> Record {
    let mut r = Record::new();
    r.insert("@timestamp".into(), Val::Num(e.key.0 as f64));
    r.insert("@message".into(), Val::Str(e.message.clone()));
    r.insert("@logStream".into(), Val::Str(e.stream.clone()));
    r.insert("@log".into(), Val::Str(format!("{account}:{group}")));
    r.insert("@ingestionTime".into(), Val::Num(e.ingestion as f64));
    r.insert("@ptr".into(), Val::Str(format!("{}:{}:{}", e.key.0, e.key.1, e.key.2)));
    let trimmed = e.message.trim_start();
    if trimmed.starts_with('{')
        && let Ok(doc) = serde_json::from_str::<Json>(trimmed)
    {
        flatten("", &doc, &mut r, 0);
    }
    r
}

fn show(field: &str, v: &Val) -> String {
    match (field, v) {
        ("@timestamp" | "@ingestionTime", Val::Num(n)) => insights_time(*n as i64),
        (f, Val::Num(n)) if f.starts_with("bin(") => insights_time(*n as i64),
        _ => v.text(),
    }
}

struct Acc {
    count: f64,
    sum: f64,
    min: Option<f64>,
    max: Option<f64>,
    distinct: HashSet<String>,
}

fn run(commands: &[Command], mut records: Vec<Record>, limit: usize) -> Vec<Vec<(String, String)>> {
    let mut fields: Option<Vec<String>> = None;
    let mut stats_fields: Option<Vec<String>> = None;
    let mut sorted = false;
    let mut limit = limit;
    for c in commands {
        match c {
            Command::Fields(f) => fields = Some(f.clone()),
            Command::Filter(e) => records.retain(|r| truth(e, r)),
            Command::Parse { field, regex, names } => {
                for r in &mut records {
                    let Some(v) = r.get(field).map(Val::text) else { continue };
                    if let Ok(Some(caps)) = regex.captures(&v) {
                        for (i, n) in names.iter().enumerate() {
                            if let Some(m) = caps.get(i + 1) {
                                r.insert(n.clone(), Val::Str(m.as_str().to_string()));
                            }
                        }
                    }
                }
            }
            Command::Sort(keys) => {
                sorted = true;
                records.sort_by(|a, b| {
                    for (k, desc) in keys {
                        let o = match (a.get(k), b.get(k)) {
                            (Some(x), Some(y)) => compare(x, y),
                            (Some(_), None) => std::cmp::Ordering::Less,
                            (None, Some(_)) => std::cmp::Ordering::Greater,
                            (None, None) => std::cmp::Ordering::Equal,
                        };
                        let o = if *desc { o.reverse() } else { o };
                        if o != std::cmp::Ordering::Equal {
                            return o;
                        }
                    }
                    std::cmp::Ordering::Equal
                });
            }
            Command::Limit(n) => {
                limit = limit.min(*n);
                records.truncate(*n);
            }
            Command::Stats { aggs, by } => {
                let mut groups: BTreeMap<Vec<String>, (Record, Vec<Acc>)> = BTreeMap::new();
                for r in &records {
                    let mut key = Vec::new();
                    let mut head = Record::new();
                    for (g, label) in by {
                        let v = match g {
                            GroupBy::Field(f) => r.get(f).cloned(),
                            GroupBy::Bin(ms) => r
                                .get("@timestamp")
                                .and_then(Val::num)
                                .map(|t| Val::Num(((t as i64).div_euclid(*ms) * ms) as f64)),
                        };
                        key.push(
                            v.as_ref().map(|v| format!("{:>30}", v.text())).unwrap_or_default(),
                        );
                        if let Some(v) = v {
                            head.insert(label.clone(), v);
                        }
                    }
                    let entry = groups.entry(key).or_insert_with(|| {
                        let accs = aggs
                            .iter()
                            .map(|_| Acc {
                                count: 0.0,
                                sum: 0.0,
                                min: None,
                                max: None,
                                distinct: HashSet::new(),
                            })
                            .collect();
                        (head, accs)
                    });
                    for ((agg, _), acc) in aggs.iter().zip(entry.1.iter_mut()) {
                        let field = match agg {
                            Agg::Count(None) => {
                                acc.count += 1.0;
                                continue;
                            }
                            Agg::Count(Some(f))
                            | Agg::CountDistinct(f)
                            | Agg::Avg(f)
                            | Agg::Sum(f)
                            | Agg::Min(f)
                            | Agg::Max(f) => f,
                        };
                        let Some(v) = r.get(field) else { continue };
                        if let Agg::CountDistinct(_) = agg {
                            acc.distinct.insert(v.text());
                            continue;
                        }
                        if let Agg::Count(_) = agg {
                            acc.count += 1.0;
                            continue;
                        }
                        let Some(n) = v.num() else { continue };
                        acc.count += 1.0;
                        acc.sum += n;
                        acc.min = Some(acc.min.map_or(n, |m| m.min(n)));
                        acc.max = Some(acc.max.map_or(n, |m| m.max(n)));
                    }
                }
                let mut out = Vec::new();
                for (_, (mut head, accs)) in groups {
                    for ((agg, label), acc) in aggs.iter().zip(accs) {
                        let v = match agg {
                            Agg::Count(_) => Some(acc.count),
                            Agg::CountDistinct(_) => Some(acc.distinct.len() as f64),
                            Agg::Sum(_) => (acc.count > 0.0).then_some(acc.sum),
                            Agg::Avg(_) => (acc.count > 0.0).then(|| acc.sum / acc.count),
                            Agg::Min(_) => acc.min,
                            Agg::Max(_) => acc.max,
                        };
                        if let Some(v) = v {
                            head.insert(label.clone(), Val::Num(v));
                        }
                    }
                    out.push(head);
                }
                records = out;
                let mut names: Vec<String> = by.iter().map(|(_, l)| l.clone()).collect();
                names.extend(aggs.iter().map(|(_, l)| l.clone()));
                stats_fields = Some(names);
                fields = None;
                sorted = !by.is_empty();
            }
        }
    }
    if !sorted && stats_fields.is_none() {
        records.sort_by(|a, b| {
            let t = |r: &Record| r.get("@timestamp").and_then(Val::num).unwrap_or(0.0);
            t(b).partial_cmp(&t(a)).unwrap_or(std::cmp::Ordering::Equal)
        });
    }
    records.truncate(limit);
    let shown = match (&stats_fields, fields) {
        (Some(s), _) => s.clone(),
        (None, Some(f)) => {
            let mut f = f;
            f.push("@ptr".into());
            f
        }
        (None, None) => vec!["@timestamp".into(), "@message".into(), "@ptr".into()],
    };
    records
        .iter()
        .map(|r| shown.iter().filter_map(|f| r.get(f).map(|v| (f.clone(), show(f, v)))).collect())
        .collect()
}

impl Logs {
    /// StartQuery: runs the query now; its id reads the results.
    pub fn start_query(&self, q: &StartQuery) -> Result<String, LogsError> {
        if q.groups.is_empty() {
            return Err(LogsError::InvalidParameter(
                "Query must specify either logGroupName, logGroupNames or logGroupIdentifiers."
                    .into(),
            ));
        }
        if q.end_time < q.start_time {
            return Err(LogsError::InvalidParameter(
                "End time should not be before the start time".into(),
            ));
        }
        let limit = match q.limit {
            None => MAX_RESULTS,
            Some(n) if (1..=MAX_RESULTS).contains(&n) => n,
            Some(n) => {
                return Err(LogsError::InvalidParameter(format!(
                    "1 validation error detected: Value '{n}' at 'limit' failed to satisfy constraint: Member must have value between 1 and 10000"
                )));
            }
        };
        let commands = parse_query(&q.query)?;
        let mut records = Vec::new();
        let mut scanned = 0usize;
        let mut bytes = 0usize;
        for name in &q.groups {
            let g = self.group(name)?;
            let streams: Vec<(String, crate::LogStream)> =
                self.store.list(crate::STREAMS, &format!("{name}:"))?;
            let mut events = Vec::new();
            for (_, s) in streams.iter().filter(|(_, s)| &s.group == name) {
                self.stream_events(
                    &g,
                    &s.name,
                    (Some(q.start_time * 1000), Some(q.end_time * 1000 + 999), true),
                    &|_| true,
                    &mut events,
                )?;
            }
            scanned += events.len();
            bytes += events.iter().map(|e| e.message.len()).sum::<usize>();
            records.extend(events.iter().map(|e| record(&self.account.account_id, name, e)));
        }
        let matched_before = records.len();
        let rows = run(&commands, records, limit);
        let has_stats = commands.iter().any(|c| matches!(c, Command::Stats { .. }));
        let _ = matched_before;
        let id = aws_ids::uuid();
        let result = QueryResult {
            id: id.clone(),
            query: q.query.clone(),
            groups: q.groups.clone(),
            status: "Complete".into(),
            created_ms: self.now_ms(),
            records_matched: if has_stats { scanned as f64 } else { rows.len() as f64 },
            records_scanned: scanned as f64,
            bytes_scanned: bytes as f64,
            rows,
        };
        let mut queries = self.queries.lock();
        queries.results.insert(id.clone(), result);
        queries.order.push_back(id.clone());
        while queries.order.len() > KEPT_QUERIES {
            if let Some(old) = queries.order.pop_front() {
                queries.results.remove(&old);
            }
        }
        Ok(id)
    }

    /// GetQueryResults.
    pub fn query_results(&self, id: &str) -> Result<QueryResult, LogsError> {
        self.queries
            .lock()
            .results
            .get(id)
            .cloned()
            .ok_or_else(|| LogsError::ResourceNotFound(format!("Query does not exist: {id}")))
    }

    /// StopQuery: queries finish when they start, so there is nothing to stop (`false`).
    pub fn stop_query(&self, id: &str) -> Result<bool, LogsError> {
        self.query_results(id)?;
        Ok(false)
    }
}
