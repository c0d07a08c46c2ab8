//! The media search protocol of `SearchMedia`'s `Match`, as far as image
//! searches use it: parsed strictly into a list of conditions, all of which
//! an image must meet.
//!
//! Owns the tokenizer, the grammar and the evaluation of a condition against
//! one image's searchable fields ([`Searchable`]). It does not own paging,
//! sorting or the answer (see the parent module).
//!
//! Grammar (protocol page, <https://www.alibabacloud.com/help/doc-detail/86991.html>):
//!
//! ```text
//! match     := condition ( "and" condition )*          -- "and" in any case
//! condition := field "=" value                         -- exact
//!            | field "in" "(" value ( "," value )* ")" -- multi-value
//!            | field "=" open bound? "," bound? close  -- range
//! open      := "(" | "["        close := ")" | "]"     -- ( ) open, [ ] closed
//! value     := 'text' | "text" | number
//! ```
//!
//! Served fields: `CreationTime` (range only; bounds are quoted
//! `yyyy-MM-ddTHH:mm:ssZ` UTC), `CateId` (exact or multi-value; a number,
//! quoted or not), `Status` and `ImageId` (exact or multi-value, quoted). One
//! bound of a range may be left empty, as the "Search for media asset
//! information" page (<https://www.alibabacloud.com/help/doc-detail/99179.htm>)
//! documents; both empty is refused. Anything else (another field, an
//! operator a field does not take, a stray or unbalanced bracket, an
//! unterminated quote, a malformed time) is an error, never a match-all.

use std::time::UNIX_EPOCH;

/// One image's fields a `Match` can test.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Searchable {
    pub id: String,
    /// `CreationTime` in seconds since the epoch; `None` when absent or unreadable.
    pub created: Option<i64>,
    pub cate_id: Option<i64>,
    pub status: Option<String>,
}

/// One bound of a range: the time in epoch seconds and whether it is included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bound {
    pub at: i64,
    pub inclusive: bool,
}

/// One condition of a `Match`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Condition {
    CreationTime { low: Option<Bound>, high: Option<Bound> },
    CateId(Vec<i64>),
    Status(Vec<String>),
    ImageId(Vec<String>),
}

impl Condition {
    /// Whether the image meets the condition. An image without the field
    /// meets no condition on it.
    pub(crate) fn matches(&self, img: &Searchable) -> bool {
        match self {
            Condition::CreationTime { low, high } => img.created.is_some_and(|t| {
                low.is_none_or(|b| if b.inclusive { t >= b.at } else { t > b.at })
                    && high.is_none_or(|b| if b.inclusive { t <= b.at } else { t < b.at })
            }),
            Condition::CateId(ids) => img.cate_id.is_some_and(|c| ids.contains(&c)),
            Condition::Status(values) => img.status.as_ref().is_some_and(|s| values.contains(s)),
            Condition::ImageId(ids) => ids.contains(&img.id),
        }
    }
}

/// Whether an image meets every condition (an empty list: every image).
pub(crate) fn matches_all(conditions: &[Condition], img: &Searchable) -> bool {
    conditions.iter().all(|c| c.matches(img))
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Quoted(String),
    Number(String),
    Sym(char),
}

fn tokenize(s: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = s.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '=' | '(' | ')' | '[' | ']' | ',' => out.push(Token::Sym(c)),
            '\'' | '"' => {
                let mut text = String::new();
                loop {
                    match chars.next() {
                        Some((_, q)) if q == c => break,
                        Some((_, ch)) => text.push(ch),
                        None => return Err(format!("the quote at {at} is not closed")),
                    }
                }
                out.push(Token::Quoted(text));
            }
            c if c.is_ascii_digit() || c == '-' => {
                let mut text = String::from(c);
                while let Some(&(_, d)) = chars.peek().filter(|(_, d)| d.is_ascii_digit()) {
                    text.push(d);
                    chars.next();
                }
                out.push(Token::Number(text));
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut text = String::from(c);
                while let Some(&(_, d)) = chars.peek().filter(|(_, d)| d.is_ascii_alphanumeric() || *d == '_') {
                    text.push(d);
                    chars.next();
                }
                out.push(Token::Word(text));
            }
            other => return Err(format!("unexpected {other:?} at {at}")),
        }
    }
    Ok(out)
}

/// The fields served, and what each takes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    CreationTime,
    CateId,
    Status,
    ImageId,
}

impl Field {
    fn named(name: &str) -> Result<Field, String> {
        match name {
            "CreationTime" => Ok(Field::CreationTime),
            "CateId" => Ok(Field::CateId),
            "Status" => Ok(Field::Status),
            "ImageId" => Ok(Field::ImageId),
            other => Err(format!("{other} is not a field the simulator searches images by")),
        }
    }
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn expect(&mut self, sym: char) -> Result<(), String> {
        match self.next() {
            Some(Token::Sym(c)) if c == sym => Ok(()),
            other => Err(format!("expected {sym:?}, found {}", describe(other.as_ref()))),
        }
    }

    fn condition(&mut self) -> Result<Condition, String> {
        let field = match self.next() {
            Some(Token::Word(w)) => Field::named(&w)?,
            other => return Err(format!("expected a field name, found {}", describe(other.as_ref()))),
        };
        match self.next() {
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("in") => {
                if field == Field::CreationTime {
                    return Err("CreationTime takes a range, not a value list".into());
                }
                self.expect('(')?;
                let mut values = vec![self.value()?];
                loop {
                    match self.next() {
                        Some(Token::Sym(',')) => values.push(self.value()?),
                        Some(Token::Sym(')')) => break,
                        other => return Err(format!("expected ',' or ')', found {}", describe(other.as_ref()))),
                    }
                }
                values_of(field, values)
            }
            Some(Token::Sym('=')) => match self.peek() {
                Some(Token::Sym('(' | '[')) => {
                    if field != Field::CreationTime {
                        return Err("only CreationTime takes a range".into());
                    }
                    self.range()
                }
                _ => {
                    if field == Field::CreationTime {
                        return Err(
                            "CreationTime takes a range such as ['2024-01-01T00:00:00Z','2024-01-02T00:00:00Z')".into(),
                        );
                    }
                    let v = self.value()?;
                    values_of(field, vec![v])
                }
            },
            other => Err(format!("expected '=' or 'in', found {}", describe(other.as_ref()))),
        }
    }

    fn value(&mut self) -> Result<Token, String> {
        match self.next() {
            Some(t @ (Token::Quoted(_) | Token::Number(_))) => Ok(t),
            other => Err(format!("expected a value, found {}", describe(other.as_ref()))),
        }
    }

    fn range(&mut self) -> Result<Condition, String> {
        let low_inclusive = matches!(self.next(), Some(Token::Sym('[')));
        let low = match self.peek() {
            Some(Token::Sym(',')) => None,
            _ => Some(self.time()?),
        };
        self.expect(',')?;
        let high = match self.peek() {
            Some(Token::Sym(')' | ']')) => None,
            _ => Some(self.time()?),
        };
        let high_inclusive = match self.next() {
            Some(Token::Sym(']')) => true,
            Some(Token::Sym(')')) => false,
            other => return Err(format!("expected ')' or ']', found {}", describe(other.as_ref()))),
        };
        if low.is_none() && high.is_none() {
            return Err("a range needs at least one bound".into());
        }
        Ok(Condition::CreationTime {
            low: low.map(|at| Bound { at, inclusive: low_inclusive }),
            high: high.map(|at| Bound { at, inclusive: high_inclusive }),
        })
    }

    fn time(&mut self) -> Result<i64, String> {
        match self.next() {
            Some(Token::Quoted(t)) => parse_time(&t).ok_or_else(|| format!("'{t}' is not a yyyy-MM-ddTHH:mm:ssZ time")),
            other => Err(format!("expected a quoted time, found {}", describe(other.as_ref()))),
        }
    }
}

fn values_of(field: Field, values: Vec<Token>) -> Result<Condition, String> {
    match field {
        Field::CateId => values
            .into_iter()
            .map(|v| {
                let (Token::Quoted(t) | Token::Number(t)) = &v else { unreachable!("values are quoted or numbers") };
                t.parse::<i64>().map_err(|_| format!("CateId {t:?} is not a number"))
            })
            .collect::<Result<_, _>>()
            .map(Condition::CateId),
        Field::Status | Field::ImageId => {
            let texts = values
                .into_iter()
                .map(|v| match v {
                    Token::Quoted(t) => Ok(t),
                    _ => Err("Status and ImageId values are quoted text".to_owned()),
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(if field == Field::Status { Condition::Status(texts) } else { Condition::ImageId(texts) })
        }
        Field::CreationTime => Err("CreationTime takes a range".into()),
    }
}

fn describe(t: Option<&Token>) -> String {
    match t {
        None => "the end".into(),
        Some(Token::Word(w)) => format!("{w:?}"),
        Some(Token::Quoted(q)) => format!("'{q}'"),
        Some(Token::Number(n)) => n.clone(),
        Some(Token::Sym(c)) => format!("{c:?}"),
    }
}

/// A `yyyy-MM-ddTHH:mm:ssZ` time in epoch seconds; `None` in any other form.
pub(crate) fn parse_time(t: &str) -> Option<i64> {
    if !super::super::auth::is_utc_seconds(t) {
        return None;
    }
    let at = humantime::parse_rfc3339(t).ok()?;
    at.duration_since(UNIX_EPOCH).ok().and_then(|d| i64::try_from(d.as_secs()).ok())
}

/// A catalog's `CreationTime` in epoch seconds: RFC 3339, fractions allowed.
pub(crate) fn parse_catalog_time(t: &str) -> Option<i64> {
    let at = humantime::parse_rfc3339_weak(t).ok()?;
    at.duration_since(UNIX_EPOCH).ok().and_then(|d| i64::try_from(d.as_secs()).ok())
}

/// Parses a `Match`. Empty (or blank) is no condition at all.
pub(crate) fn parse(s: &str) -> Result<Vec<Condition>, String> {
    let mut p = Parser { tokens: tokenize(s)?, at: 0 };
    let mut out = Vec::new();
    if p.tokens.is_empty() {
        return Ok(out);
    }
    loop {
        out.push(p.condition()?);
        match p.next() {
            None => return Ok(out),
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("and") => {}
            other => return Err(format!("expected 'and' or the end, found {}", describe(other.as_ref()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> i64 {
        parse_time(s).unwrap()
    }

    fn img(id: &str, created: &str, cate: Option<i64>, status: &str) -> Searchable {
        Searchable { id: id.into(), created: Some(t(created)), cate_id: cate, status: Some(status.into()) }
    }

    #[test]
    fn the_four_bracket_forms_include_exactly_their_bounds() {
        let (lo, mid, hi) = ("2024-01-01T00:00:00Z", "2024-01-01T12:00:00Z", "2024-01-02T00:00:00Z");
        let at = |time: &str| img("a", time, None, "Normal");
        for (m, lo_in, hi_in) in [
            (format!("CreationTime = ['{lo}','{hi}']"), true, true),
            (format!("CreationTime = ('{lo}','{hi}')"), false, false),
            (format!("CreationTime = ['{lo}','{hi}')"), true, false),
            (format!("CreationTime = ('{lo}','{hi}']"), false, true),
        ] {
            let c = parse(&m).unwrap_or_else(|e| panic!("{m}: {e}"));
            assert_eq!(matches_all(&c, &at(lo)), lo_in, "{m} at the low bound");
            assert_eq!(matches_all(&c, &at(hi)), hi_in, "{m} at the high bound");
            assert!(matches_all(&c, &at(mid)), "{m} inside");
            assert!(!matches_all(&c, &at("2023-12-31T23:59:59Z")), "{m} before");
            assert!(!matches_all(&c, &at("2024-01-02T00:00:01Z")), "{m} after");
        }
    }

    #[test]
    fn one_bound_may_be_left_empty_but_not_both() {
        let c = parse("CreationTime = ['2024-01-01T00:00:00Z',)").unwrap();
        assert!(matches_all(&c, &img("a", "2030-01-01T00:00:00Z", None, "Normal")));
        assert!(!matches_all(&c, &img("a", "2023-01-01T00:00:00Z", None, "Normal")));
        let c = parse("CreationTime = (,'2024-01-01T00:00:00Z']").unwrap();
        assert!(matches_all(&c, &img("a", "2024-01-01T00:00:00Z", None, "Normal")));
        assert!(parse("CreationTime = (,)").is_err());
    }

    #[test]
    fn and_joins_conditions_in_any_case_and_in_takes_lists() {
        let c = parse(
            "CreationTime = ['2024-01-01T00:00:00Z','2024-01-02T00:00:00Z') AND CateId = 7 and Status in ('Normal','Blocked') aNd ImageId = 'a'",
        )
        .unwrap();
        assert_eq!(c.len(), 4);
        assert!(matches_all(&c, &img("a", "2024-01-01T05:00:00Z", Some(7), "Normal")));
        assert!(!matches_all(&c, &img("b", "2024-01-01T05:00:00Z", Some(7), "Normal")));
        assert!(!matches_all(&c, &img("a", "2024-01-01T05:00:00Z", Some(8), "Normal")));
        assert!(!matches_all(&c, &img("a", "2024-01-01T05:00:00Z", Some(7), "Uploading")));
        assert_eq!(parse("CateId = '7'").unwrap(), vec![Condition::CateId(vec![7])]);
        assert_eq!(parse("CateId in (7, '8')").unwrap(), vec![Condition::CateId(vec![7, 8])]);
        assert_eq!(parse("Status = \"Normal\"").unwrap(), vec![Condition::Status(vec!["Normal".into()])]);
        assert_eq!(parse("ImageId IN ('a','b')").unwrap(), vec![Condition::ImageId(vec!["a".into(), "b".into()])]);
        assert_eq!(parse("  ").unwrap(), vec![]);
    }

    #[test]
    fn a_missing_field_matches_nothing() {
        let none = Searchable { id: "a".into(), ..Default::default() };
        for m in ["CreationTime = ['2000-01-01T00:00:00Z',)", "CateId = 1", "Status = 'Normal'"] {
            assert!(!matches_all(&parse(m).unwrap(), &none), "{m}");
        }
    }

    #[test]
    fn bad_input_is_an_error_never_a_match_all() {
        for bad in [
            "Title = 'x'",
            "creationtime = ['2024-01-01T00:00:00Z','2024-01-02T00:00:00Z']",
            "CreationTime = ['2024-01-01T00:00:00Z','2024-01-02T00:00:00Z'",
            "CreationTime = '2024-01-01T00:00:00Z','2024-01-02T00:00:00Z']",
            "CreationTime = ['2024-01-01 00:00:00','2024-01-02T00:00:00Z']",
            "CreationTime = ['2024-01-01T00:00:00+08:00','2024-01-02T00:00:00Z']",
            "CreationTime = ['2024-13-01T00:00:00Z','2024-01-02T00:00:00Z']",
            "CreationTime = [2024,2025]",
            "CreationTime = '2024-01-01T00:00:00Z'",
            "CreationTime in ('2024-01-01T00:00:00Z')",
            "CateId = ['1','2']",
            "CateId = 'abc'",
            "CateId = ",
            "CateId in ()",
            "CateId in (1,2",
            "Status = Normal",
            "Status = 'Normal",
            "Status = 'Normal' or CateId = 1",
            "Status = 'Normal' and",
            "Status = 'Normal' CateId = 1",
            "and Status = 'Normal'",
            "Status == 'Normal'",
            "Status != 'Normal'",
            "CateId > 5",
            "*",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted: {:?}", parse(bad));
        }
    }

    #[test]
    fn catalog_times_may_carry_fractions() {
        assert_eq!(parse_catalog_time("2024-01-01T00:00:00.500Z"), Some(t("2024-01-01T00:00:00Z")));
        assert_eq!(parse_catalog_time("yesterday"), None);
    }
}
