//! Label and field selectors with kube-apiserver's semantics (`k8s.io/apimachinery/pkg/labels`
//! and `k8s.io/apimachinery/pkg/fields`, Kubernetes v1.33), including their error messages.
//!
//! Label selector syntax: `a=b,c==d,e!=f,g in (x,y),h notin (z),i,!j,k>1,l<2`; keys must be
//! qualified names and values label values. Field selector syntax: `a=b,c==d,e!=f`, values
//! escaped with `\` (`\,`, `\=`, `\\`).

use crate::validation::{
    FieldError, aggregate_errors, go_quote, go_string_slice, is_qualified_name,
    is_valid_label_value,
};
use serde_json::{Map, Value};
use std::fmt;

// ---------------------------------------------------------------------------------------------
// Label selectors
// ---------------------------------------------------------------------------------------------

/// A label selector operator (Go's `selection.Operator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    Equals,
    DoubleEquals,
    NotEquals,
    In,
    NotIn,
    Exists,
    DoesNotExist,
    GreaterThan,
    LessThan,
}

impl Operator {
    /// The operator's value in Go (`"="`, `"in"`, `"exists"`, `"gt"`, ...).
    pub fn as_str(&self) -> &'static str {
        match self {
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::In => "in",
            Operator::NotIn => "notin",
            Operator::Exists => "exists",
            Operator::DoesNotExist => "!",
            Operator::GreaterThan => "gt",
            Operator::LessThan => "lt",
        }
    }
}

/// The binary operators, in the order Go lists them in parse errors.
const BINARY_OPERATORS: &str = "in, notin, =, ==, !=, gt, lt";

/// One requirement of a label selector: a key, an operator and values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    key: String,
    operator: Operator,
    values: Vec<String>,
}

impl Requirement {
    /// `labels.NewRequirement`: validates the key, the values and their number for the
    /// operator; the error is the aggregated field errors, as Go prints them.
    pub fn new(key: &str, operator: Operator, values: Vec<String>) -> Result<Requirement, String> {
        let mut errs: Vec<FieldError> = Vec::new();
        if let Some(e) = validate_label_key(key, "key") {
            errs.push(e);
        }
        let rendered = || {
            go_string_slice(if values.is_empty() {
                None
            } else {
                Some(&values)
            })
        };
        match operator {
            Operator::In | Operator::NotIn => {
                if values.is_empty() {
                    errs.push(FieldError::invalid_rendered(
                        "values",
                        Some(rendered()),
                        "for 'in', 'notin' operators, values set can't be empty",
                    ));
                }
            }
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals => {
                if values.len() != 1 {
                    errs.push(FieldError::invalid_rendered(
                        "values",
                        Some(rendered()),
                        "exact-match compatibility requires one single value",
                    ));
                }
            }
            Operator::Exists | Operator::DoesNotExist => {
                if !values.is_empty() {
                    errs.push(FieldError::invalid_rendered(
                        "values",
                        Some(rendered()),
                        "values set must be empty for exists and does not exist",
                    ));
                }
            }
            Operator::GreaterThan | Operator::LessThan => {
                if values.len() != 1 {
                    errs.push(FieldError::invalid_rendered(
                        "values",
                        Some(rendered()),
                        "for 'Gt', 'Lt' operators, exactly one value is required",
                    ));
                }
                for (i, v) in values.iter().enumerate() {
                    if v.parse::<i64>().is_err() {
                        errs.push(FieldError::invalid(
                            format!("values[{i}]"),
                            v,
                            "for 'Gt', 'Lt' operators, the value must be an integer",
                        ));
                    }
                }
            }
        }
        for (i, v) in values.iter().enumerate() {
            let msgs = is_valid_label_value(v);
            if !msgs.is_empty() {
                errs.push(FieldError::invalid(
                    format!("values[{i}][{key}]"),
                    v,
                    msgs.join("; "),
                ));
            }
        }
        if errs.is_empty() {
            Ok(Requirement {
                key: key.to_string(),
                operator,
                values,
            })
        } else {
            Err(aggregate_errors(&errs))
        }
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn operator(&self) -> Operator {
        self.operator
    }

    /// The values, as given (sorted and deduplicated when parsed from a string).
    pub fn values(&self) -> &[String] {
        &self.values
    }

    fn has_value(&self, v: &str) -> bool {
        self.values.iter().any(|x| x == v)
    }

    /// Whether the labels satisfy this requirement. `!=` and `notin` match when the key is
    /// absent; `gt`/`lt` need the key, with an integer value.
    pub fn matches(&self, labels: &Map<String, Value>) -> bool {
        let value = labels.get(&self.key).map(|v| v.as_str().unwrap_or(""));
        match self.operator {
            Operator::In | Operator::Equals | Operator::DoubleEquals => {
                value.is_some_and(|v| self.has_value(v))
            }
            Operator::NotIn | Operator::NotEquals => value.is_none_or(|v| !self.has_value(v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let Some(Ok(actual)) = value.map(str::parse::<i64>) else {
                    return false;
                };
                let [wanted] = self.values.as_slice() else {
                    return false;
                };
                let Ok(wanted) = wanted.parse::<i64>() else {
                    return false;
                };
                if self.operator == Operator::GreaterThan {
                    actual > wanted
                } else {
                    actual < wanted
                }
            }
        }
    }
}

impl fmt::Display for Requirement {
    /// Go's `Requirement.String()`: e.g. `x in (a,b)`, `!y`, `z!=c`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.operator == Operator::DoesNotExist {
            f.write_str("!")?;
        }
        f.write_str(&self.key)?;
        let (op, parens) = match self.operator {
            Operator::Equals => ("=", false),
            Operator::DoubleEquals => ("==", false),
            Operator::NotEquals => ("!=", false),
            Operator::In => (" in ", true),
            Operator::NotIn => (" notin ", true),
            Operator::GreaterThan => (">", false),
            Operator::LessThan => ("<", false),
            Operator::Exists | Operator::DoesNotExist => return Ok(()),
        };
        f.write_str(op)?;
        if parens {
            f.write_str("(")?;
        }
        let mut sorted: Vec<&str> = self.values.iter().map(String::as_str).collect();
        sorted.sort_unstable();
        f.write_str(&sorted.join(","))?;
        if parens {
            f.write_str(")")?;
        }
        Ok(())
    }
}

fn validate_label_key(key: &str, path: &str) -> Option<FieldError> {
    let msgs = is_qualified_name(key);
    if msgs.is_empty() {
        None
    } else {
        Some(FieldError::invalid(path, key, msgs.join("; ")))
    }
}

/// A label selector: the AND of its requirements. It may also be "nothing" (what a null
/// `metav1.LabelSelector` converts to), which matches no labels.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
    nothing: bool,
}

impl LabelSelector {
    /// The selector that matches everything.
    pub fn everything() -> LabelSelector {
        LabelSelector::default()
    }

    /// The selector that matches nothing.
    pub fn nothing() -> LabelSelector {
        LabelSelector {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    /// `labels.Parse`: parses the string form, e.g. `a=b,c in (x,y),!d`. The error messages are
    /// apimachinery's (`unable to parse requirement: ...`, `found 'x', expected: ...`).
    pub fn parse(s: &str) -> Result<LabelSelector, String> {
        let mut parser = Parser::new(s);
        let mut requirements = parser.parse()?;
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector {
            requirements,
            nothing: false,
        })
    }

    /// `metav1.LabelSelectorAsSelector`: converts a `metav1.LabelSelector` (`matchLabels`,
    /// `matchExpressions`). `null` matches nothing, `{}` everything.
    pub fn from_label_selector_json(sel: &Value) -> Result<LabelSelector, String> {
        let obj = match sel {
            Value::Null => return Ok(LabelSelector::nothing()),
            Value::Object(o) => o,
            other => {
                return Err(format!(
                    "invalid label selector: expected an object, got {other}"
                ));
            }
        };
        let mut requirements = Vec::new();
        match obj.get("matchLabels") {
            None | Some(Value::Null) => {}
            Some(Value::Object(labels)) => {
                for (k, v) in labels {
                    let Some(v) = v.as_str() else {
                        return Err(format!(
                            "invalid label selector: matchLabels[{k}] must be a string"
                        ));
                    };
                    requirements.push(Requirement::new(k, Operator::Equals, vec![v.to_string()])?);
                }
            }
            Some(_) => {
                return Err("invalid label selector: matchLabels must be an object".to_string());
            }
        }
        match obj.get("matchExpressions") {
            None | Some(Value::Null) => {}
            Some(Value::Array(exprs)) => {
                for (i, expr) in exprs.iter().enumerate() {
                    let Some(expr) = expr.as_object() else {
                        return Err(format!(
                            "invalid label selector: matchExpressions[{i}] must be an object"
                        ));
                    };
                    let key = expr.get("key").and_then(Value::as_str).unwrap_or("");
                    let op = expr.get("operator").and_then(Value::as_str).unwrap_or("");
                    let operator = match op {
                        "In" => Operator::In,
                        "NotIn" => Operator::NotIn,
                        "Exists" => Operator::Exists,
                        "DoesNotExist" => Operator::DoesNotExist,
                        other => {
                            return Err(format!(
                                "{} is not a valid label selector operator",
                                go_quote(other)
                            ));
                        }
                    };
                    let values = match expr.get("values") {
                        None | Some(Value::Null) => Vec::new(),
                        Some(Value::Array(vs)) => {
                            let mut out = Vec::with_capacity(vs.len());
                            for v in vs {
                                let Some(v) = v.as_str() else {
                                    return Err(format!(
                                        "invalid label selector: matchExpressions[{i}].values must be strings"
                                    ));
                                };
                                out.push(v.to_string());
                            }
                            out
                        }
                        Some(_) => {
                            return Err(format!(
                                "invalid label selector: matchExpressions[{i}].values must be an array"
                            ));
                        }
                    };
                    requirements.push(Requirement::new(key, operator, values)?);
                }
            }
            Some(_) => {
                return Err("invalid label selector: matchExpressions must be an array".to_string());
            }
        }
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector {
            requirements,
            nothing: false,
        })
    }

    /// Whether every requirement matches the labels (an object of label → string value).
    pub fn matches(&self, labels: &Map<String, Value>) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Whether the selector selects everything (no requirements).
    pub fn is_empty(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    /// Whether this is the selector that matches nothing.
    pub fn is_nothing(&self) -> bool {
        self.nothing
    }

    /// The requirements, sorted by key.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// `RequiresExactMatch`: the single value the selector requires for `label`, if any.
    pub fn requires_exact_match(&self, label: &str) -> Option<&str> {
        let r = self.requirements.iter().find(|r| r.key == label)?;
        match (r.operator, r.values.as_slice()) {
            (Operator::Equals | Operator::DoubleEquals | Operator::In, [v]) => Some(v),
            _ => None,
        }
    }
}

impl fmt::Display for LabelSelector {
    /// Go's `String()`: the requirements joined by `,`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

// --- Lexer (labels/selector.go) ---------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Error,
    EndOfString,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

fn string_to_token(s: &[u8]) -> Option<Token> {
    Some(match s {
        b")" => Token::ClosedPar,
        b"," => Token::Comma,
        b"!" => Token::DoesNotExist,
        b"==" => Token::DoubleEquals,
        b"=" => Token::Equals,
        b">" => Token::GreaterThan,
        b"in" => Token::In,
        b"<" => Token::LessThan,
        b"!=" => Token::NotEquals,
        b"notin" => Token::NotIn,
        b"(" => Token::OpenPar,
        _ => return None,
    })
}

fn is_whitespace(ch: u8) -> bool {
    matches!(ch, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special_symbol(ch: u8) -> bool {
    matches!(ch, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

fn bytes_to_string(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

struct Lexer<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Lexer<'_> {
    /// Returns the current byte and advances; 0 at the end (like Go's lexer).
    fn read(&mut self) -> u8 {
        match self.s.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                b
            }
            None => 0,
        }
    }

    fn unread(&mut self) {
        self.pos = self.pos.saturating_sub(1);
    }

    fn scan_id_or_keyword(&mut self) -> (Token, String) {
        let mut buffer = Vec::new();
        loop {
            let ch = self.read();
            if ch == 0 {
                break;
            }
            if is_special_symbol(ch) || is_whitespace(ch) {
                self.unread();
                break;
            }
            buffer.push(ch);
        }
        match string_to_token(&buffer) {
            Some(tok) => (tok, bytes_to_string(&buffer)),
            None => (Token::Identifier, bytes_to_string(&buffer)),
        }
    }

    fn scan_special_symbol(&mut self) -> (Token, String) {
        let mut last: Option<(Token, String)> = None;
        let mut buffer = Vec::new();
        loop {
            let ch = self.read();
            if ch == 0 {
                break;
            }
            if is_special_symbol(ch) {
                buffer.push(ch);
                if let Some(tok) = string_to_token(&buffer) {
                    last = Some((tok, bytes_to_string(&buffer)));
                } else if last.is_some() {
                    self.unread();
                    break;
                }
            } else {
                self.unread();
                break;
            }
        }
        match last {
            Some(item) => item,
            None => (
                Token::Error,
                format!(
                    "error expected: keyword found '{}'",
                    bytes_to_string(&buffer)
                ),
            ),
        }
    }

    fn lex(&mut self) -> (Token, String) {
        let mut ch = self.read();
        while is_whitespace(ch) {
            ch = self.read();
        }
        if ch == 0 {
            return (Token::EndOfString, String::new());
        }
        self.unread();
        if is_special_symbol(ch) {
            self.scan_special_symbol()
        } else {
            self.scan_id_or_keyword()
        }
    }
}

// --- Parser (labels/selector.go) --------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    KeyAndOperator,
    Values,
}

struct Parser {
    items: Vec<(Token, String)>,
    position: usize,
}

impl Parser {
    fn new(s: &str) -> Parser {
        let mut lexer = Lexer {
            s: s.as_bytes(),
            pos: 0,
        };
        let mut items = Vec::new();
        loop {
            let (tok, lit) = lexer.lex();
            items.push((tok, lit));
            if tok == Token::EndOfString {
                break;
            }
        }
        Parser { items, position: 0 }
    }

    fn item(&self, pos: usize, ctx: Context) -> (Token, String) {
        let (tok, lit) = self
            .items
            .get(pos)
            .cloned()
            .unwrap_or((Token::EndOfString, String::new()));
        let tok = match (ctx, tok) {
            (Context::Values, Token::In | Token::NotIn) => Token::Identifier,
            (_, t) => t,
        };
        (tok, lit)
    }

    fn lookahead(&self, ctx: Context) -> (Token, String) {
        self.item(self.position, ctx)
    }

    fn consume(&mut self, ctx: Context) -> (Token, String) {
        let item = self.item(self.position, ctx);
        self.position += 1;
        item
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, String> {
        let mut requirements = Vec::new();
        loop {
            let (tok, lit) = self.lookahead(Context::Values);
            match tok {
                Token::Identifier | Token::DoesNotExist => {
                    let r = self
                        .parse_requirement()
                        .map_err(|e| format!("unable to parse requirement: {e}"))?;
                    requirements.push(r);
                    let (t, l) = self.consume(Context::Values);
                    match t {
                        Token::EndOfString => return Ok(requirements),
                        Token::Comma => {
                            let (t2, l2) = self.lookahead(Context::Values);
                            if t2 != Token::Identifier && t2 != Token::DoesNotExist {
                                return Err(format!(
                                    "found '{l2}', expected: identifier after ','"
                                ));
                            }
                        }
                        _ => {
                            return Err(format!("found '{l}', expected: ',' or 'end of string'"));
                        }
                    }
                }
                Token::EndOfString => return Ok(requirements),
                _ => {
                    return Err(format!(
                        "found '{lit}', expected: !, identifier, or 'end of string'"
                    ));
                }
            }
        }
    }

    fn parse_requirement(&mut self) -> Result<Requirement, String> {
        let (key, operator) = self.parse_key_and_infer_operator()?;
        if let Some(op @ (Operator::Exists | Operator::DoesNotExist)) = operator {
            return Requirement::new(&key, op, Vec::new());
        }
        let operator = self.parse_operator()?;
        let values = match operator {
            Operator::In | Operator::NotIn => self.parse_values()?,
            _ => self.parse_exact_value()?,
        };
        Requirement::new(&key, operator, values)
    }

    fn parse_key_and_infer_operator(&mut self) -> Result<(String, Option<Operator>), String> {
        let mut operator = None;
        let (mut tok, mut literal) = self.consume(Context::Values);
        if tok == Token::DoesNotExist {
            operator = Some(Operator::DoesNotExist);
            (tok, literal) = self.consume(Context::Values);
        }
        if tok != Token::Identifier {
            return Err(format!("found '{literal}', expected: identifier"));
        }
        if let Some(e) = validate_label_key(&literal, "<nil>") {
            return Err(e.to_string());
        }
        let (t, _) = self.lookahead(Context::Values);
        if (t == Token::EndOfString || t == Token::Comma)
            && operator != Some(Operator::DoesNotExist)
        {
            operator = Some(Operator::Exists);
        }
        Ok((literal, operator))
    }

    fn parse_operator(&mut self) -> Result<Operator, String> {
        let (tok, lit) = self.consume(Context::KeyAndOperator);
        Ok(match tok {
            Token::In => Operator::In,
            Token::Equals => Operator::Equals,
            Token::DoubleEquals => Operator::DoubleEquals,
            Token::GreaterThan => Operator::GreaterThan,
            Token::LessThan => Operator::LessThan,
            Token::NotIn => Operator::NotIn,
            Token::NotEquals => Operator::NotEquals,
            _ => return Err(format!("found '{lit}', expected: {BINARY_OPERATORS}")),
        })
    }

    /// Parses `(a,b,...)`; the result is sorted and deduplicated (Go's `sets.String.List()`).
    fn parse_values(&mut self) -> Result<Vec<String>, String> {
        let (tok, lit) = self.consume(Context::Values);
        if tok != Token::OpenPar {
            return Err(format!("found '{lit}' expected: '('"));
        }
        let (tok, lit) = self.lookahead(Context::Values);
        match tok {
            Token::Identifier | Token::Comma => {
                let s = self.parse_identifiers_list()?;
                let (tok, _) = self.consume(Context::Values);
                if tok != Token::ClosedPar {
                    return Err(format!("found '{lit}', expected: ')'"));
                }
                Ok(s)
            }
            Token::ClosedPar => {
                self.consume(Context::Values);
                Ok(vec![String::new()])
            }
            _ => Err(format!("found '{lit}', expected: ',', ')' or identifier")),
        }
    }

    fn parse_identifiers_list(&mut self) -> Result<Vec<String>, String> {
        let mut s: Vec<String> = Vec::new();
        let finish = |mut s: Vec<String>| {
            s.sort();
            s.dedup();
            s
        };
        loop {
            let (tok, lit) = self.consume(Context::Values);
            match tok {
                Token::Identifier => {
                    s.push(lit);
                    let (tok2, lit2) = self.lookahead(Context::Values);
                    match tok2 {
                        Token::Comma => continue,
                        Token::ClosedPar => return Ok(finish(s)),
                        _ => return Err(format!("found '{lit2}', expected: ',' or ')'")),
                    }
                }
                Token::Comma => {
                    if s.is_empty() {
                        s.push(String::new()); // "(,"
                    }
                    let (tok2, _) = self.lookahead(Context::Values);
                    if tok2 == Token::ClosedPar {
                        s.push(String::new()); // ",)"
                        return Ok(finish(s));
                    }
                    if tok2 == Token::Comma {
                        self.consume(Context::Values);
                        s.push(String::new()); // ",,"
                    }
                }
                _ => return Err(format!("found '{lit}', expected: ',', or identifier")),
            }
        }
    }

    fn parse_exact_value(&mut self) -> Result<Vec<String>, String> {
        let (tok, _) = self.lookahead(Context::Values);
        if tok == Token::EndOfString || tok == Token::Comma {
            return Ok(vec![String::new()]);
        }
        let (tok, lit) = self.consume(Context::Values);
        if tok == Token::Identifier {
            return Ok(vec![lit]);
        }
        Err(format!("found '{lit}', expected: identifier"))
    }
}

// ---------------------------------------------------------------------------------------------
// Field selectors
// ---------------------------------------------------------------------------------------------

/// A field selector operator: `=`/`==` or `!=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldOperator {
    Equals,
    NotEquals,
}

/// One term of a field selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRequirement {
    pub field: String,
    pub operator: FieldOperator,
    /// The unescaped value.
    pub value: String,
}

/// A field selector: the AND of `field=value` / `field!=value` terms.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldSelector {
    terms: Vec<FieldRequirement>,
}

/// `fields.EscapeValue`: escapes `\`, `,` and `=`.
pub fn escape_field_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `fields.UnescapeValue`.
pub fn unescape_field_value(s: &str) -> Result<String, String> {
    if !s.contains(['\\', ',', '=']) {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut in_slash = false;
    for c in s.chars() {
        if in_slash {
            match c {
                '\\' | ',' | '=' => out.push(c),
                _ => {
                    return Err(format!(
                        "invalid field selector: invalid escape sequence: \\{c}"
                    ));
                }
            }
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            ',' | '=' => {
                // Go prints the rune with %v: its code point.
                return Err(format!(
                    "invalid field selector: unescaped character in value: {}",
                    c as u32
                ));
            }
            _ => out.push(c),
        }
    }
    if in_slash {
        return Err("invalid field selector: invalid escape sequence: \\".to_string());
    }
    Ok(out)
}

/// Splits on unescaped commas.
fn split_terms(s: &str) -> Vec<&str> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut in_slash = false;
    for (i, c) in s.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(s.get(start..i).unwrap_or(""));
            start = i + 1;
        }
    }
    terms.push(s.get(start..).unwrap_or(""));
    terms
}

/// Splits a term at its first operator (`!=`, `==`, `=`).
fn split_term(term: &str) -> Option<(&str, FieldOperator, &str)> {
    for (i, _) in term.char_indices() {
        let rest = term.get(i..).unwrap_or("");
        for (op, operator) in [
            ("!=", FieldOperator::NotEquals),
            ("==", FieldOperator::Equals),
            ("=", FieldOperator::Equals),
        ] {
            if rest.starts_with(op) {
                return Some((
                    term.get(..i).unwrap_or(""),
                    operator,
                    term.get(i + op.len()..).unwrap_or(""),
                ));
            }
        }
    }
    None
}

impl FieldSelector {
    /// `fields.ParseSelector`: `a=b,c==d,e!=f`, with escaped values. Terms with neither field
    /// nor value (e.g. `=`) are dropped, as in Go.
    pub fn parse(s: &str) -> Result<FieldSelector, String> {
        let mut parts = split_terms(s);
        parts.sort_unstable();
        let mut terms = Vec::new();
        for part in parts {
            if part.is_empty() {
                continue;
            }
            let Some((lhs, operator, rhs)) = split_term(part) else {
                return Err(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                ));
            };
            let value = unescape_field_value(rhs)?;
            if lhs.is_empty() && value.is_empty() {
                continue;
            }
            terms.push(FieldRequirement {
                field: lhs.to_string(),
                operator,
                value,
            });
        }
        Ok(FieldSelector { terms })
    }

    /// Whether every term matches; `get` returns a field's value, `None` (absent) counting as "".
    pub fn matches(&self, get: &dyn Fn(&str) -> Option<String>) -> bool {
        self.terms.iter().all(|t| {
            let actual = get(&t.field).unwrap_or_default();
            match t.operator {
                FieldOperator::Equals => actual == t.value,
                FieldOperator::NotEquals => actual != t.value,
            }
        })
    }

    /// The field names used, in term order (a field may appear more than once).
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.terms.iter().map(|t| t.field.as_str())
    }

    /// Whether the selector selects everything (no terms).
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// The terms, sorted as Go sorts them.
    pub fn requirements(&self) -> &[FieldRequirement] {
        &self.terms
    }

    /// `RequiresExactMatch`: the value an `=` term requires for `field`, if any.
    pub fn requires_exact_match(&self, field: &str) -> Option<&str> {
        self.terms
            .iter()
            .find(|t| t.field == field && t.operator == FieldOperator::Equals)
            .map(|t| t.value.as_str())
    }
}

impl fmt::Display for FieldSelector {
    /// Go's `String()`: `field=value` / `field!=value` terms (values escaped) joined by `,`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, t) in self.terms.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let op = match t.operator {
                FieldOperator::Equals => "=",
                FieldOperator::NotEquals => "!=",
            };
            write!(f, "{}{}{}", t.field, op, escape_field_value(&t.value))?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    fn sel(s: &str) -> LabelSelector {
        LabelSelector::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    const NAME_PART_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
    const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

    #[test]
    fn parse_good_strings_round_trip() {
        for s in [
            "x=a,y=b,z=c",
            "",
            "x!=a,y=b",
            "x=",
            "x= ",
            "x=,z= ",
            "x= ,z= ",
            "!x",
            "x>1",
            "x>1,z<5",
        ] {
            assert_eq!(sel(s).to_string(), s.replace(' ', ""), "{s:?}");
        }
    }

    #[test]
    fn parse_bad_strings() {
        for s in [
            "x=a||y=b",
            "x==a==b",
            "!x=a",
            "x<a",
            "x,,y",
            ",x,y",
            "x nott in (y)",
            "a in (xyz),",
            "a in (xyz)b notin ()",
            "a in (xyz abc)",
            "a notin(",
            "a (",
            "(",
            "x in",
            "!",
            "x=a=b",
            "x in (a",
            "x in a",
            "a b",
        ] {
            assert!(LabelSelector::parse(s).is_err(), "{s:?}");
        }
    }

    #[test]
    fn parse_set_based() {
        let s = sel("x notin (abc,,def),bar,z in (),w");
        let reqs = s.requirements();
        assert_eq!(reqs.len(), 4);
        assert_eq!(
            (reqs[0].key(), reqs[0].operator(), reqs[0].values()),
            ("bar", Operator::Exists, &[][..])
        );
        assert_eq!(reqs[1].key(), "w");
        assert_eq!(reqs[2].key(), "x");
        assert_eq!(reqs[2].operator(), Operator::NotIn);
        assert_eq!(reqs[2].values(), ["", "abc", "def"]);
        assert_eq!(reqs[3].values(), [""]);
        assert_eq!(sel("\rx").requirements()[0].operator(), Operator::Exists);
        assert_eq!(
            sel("a in (x,y,notin, z,in)").requirements()[0].values(),
            ["in", "notin", "x", "y", "z"]
        );
        assert_eq!(sel("x notin ( )").requirements()[0].values(), [""]);
        assert_eq!(sel("x notin (, a)").requirements()[0].values(), ["", "a"]);
        assert_eq!(sel("x in (abc,)").requirements()[0].values(), ["", "abc"]);
        assert_eq!(
            sel("x  notin\t\t(abc,def)").to_string(),
            "x notin (abc,def)"
        );
        assert_eq!(sel("x notin\n (abc)").requirements()[0].values(), ["abc"]);
        assert_eq!(
            sel("0.1.2.domain/99 notin (10.10.100.1, tick.tack.clock)").requirements()[0].key(),
            "0.1.2.domain/99"
        );
        assert_eq!(sel("a ").requirements()[0].operator(), Operator::Exists);
        // "in" and "notin" are identifiers as keys and values.
        let s = sel("in=notin");
        assert_eq!(s.requirements()[0].key(), "in");
        assert_eq!(s.requirements()[0].values(), ["notin"]);
        assert_eq!(
            sel("x==y").requirements()[0].operator(),
            Operator::DoubleEquals
        );
        assert_eq!(sel("!x, y").to_string(), "!x,y");
        assert!(sel("  ").is_empty());
        // Sorted by key.
        assert_eq!(sel("b=1,a=2").to_string(), "a=2,b=1");
    }

    #[test]
    fn parse_error_messages() {
        let err = |s: &str| LabelSelector::parse(s).unwrap_err();
        assert_eq!(
            err("x nott in (y)"),
            "unable to parse requirement: found 'nott', expected: in, notin, =, ==, !=, gt, lt"
        );
        assert_eq!(
            err("!"),
            "unable to parse requirement: found '', expected: identifier"
        );
        assert_eq!(
            err("x in"),
            "unable to parse requirement: found '' expected: '('"
        );
        assert_eq!(
            err("("),
            "found '(', expected: !, identifier, or 'end of string'"
        );
        assert_eq!(err("x,,y"), "found ',', expected: identifier after ','");
        assert_eq!(
            err("a in (xyz),"),
            "found '', expected: identifier after ','"
        );
        assert_eq!(
            err("a in (xyz)b notin ()"),
            "found 'b', expected: ',' or 'end of string'"
        );
        assert_eq!(
            err("a in (xyz abc)"),
            "unable to parse requirement: found 'abc', expected: ',' or ')'"
        );
        assert_eq!(
            err("a in (=)"),
            "unable to parse requirement: found '=', expected: ',', ')' or identifier"
        );
        assert_eq!(
            err("a in (x,=)"),
            "unable to parse requirement: found '=', expected: ',', or identifier"
        );
        assert_eq!(
            err("x=a||y=b"),
            format!(
                "unable to parse requirement: values[0][x]: Invalid value: \"a||y\": {LABEL_VALUE_MSG}"
            )
        );
        assert_eq!(
            err("x=(a)"),
            "unable to parse requirement: found '(', expected: identifier"
        );
        assert_eq!(err("!x=a"), "found '=', expected: ',' or 'end of string'");
        assert_eq!(
            err("Bad Key=a"),
            "unable to parse requirement: found 'Key', expected: in, notin, =, ==, !=, gt, lt"
        );
        assert_eq!(
            err("x<a"),
            "unable to parse requirement: values[0]: Invalid value: \"a\": for 'Gt', 'Lt' operators, the value must be an integer"
        );
    }

    #[test]
    fn parse_validates_keys_and_values() {
        let err = |s: &str| LabelSelector::parse(s).unwrap_err();
        assert_eq!(
            err("bad$key=a"),
            format!(
                "unable to parse requirement: <nil>: Invalid value: \"bad$key\": {NAME_PART_MSG}"
            )
        );
        assert_eq!(
            err("a/b/c"),
            "unable to parse requirement: <nil>: Invalid value: \"a/b/c\": a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        );
        assert_eq!(
            err("key=bad|value"),
            format!(
                "unable to parse requirement: values[0][key]: Invalid value: \"bad|value\": {LABEL_VALUE_MSG}"
            )
        );
        assert_eq!(
            err("key in (-a,b,c-)"),
            format!(
                "unable to parse requirement: [values[0][key]: Invalid value: \"-a\": {LABEL_VALUE_MSG}, values[2][key]: Invalid value: \"c-\": {LABEL_VALUE_MSG}]"
            )
        );
        let long = "a".repeat(64);
        assert_eq!(
            err(&format!("k={long}")),
            format!(
                "unable to parse requirement: values[0][k]: Invalid value: \"{long}\": must be no more than 63 characters"
            )
        );
        let long_key = "a".repeat(64);
        assert_eq!(
            err(&long_key),
            format!(
                "unable to parse requirement: <nil>: Invalid value: \"{long_key}\": name part must be no more than 63 characters"
            )
        );
        assert_eq!(
            err("Bad.Prefix/x"),
            "unable to parse requirement: <nil>: Invalid value: \"Bad.Prefix/x\": prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        );
        assert!(err("/x").contains("prefix part must be non-empty"));
        // Two messages for one key are joined by "; ".
        assert!(err("x/").contains("name part must be non-empty; name part must consist"));
    }

    #[test]
    fn matching() {
        let ls = labels(json!({"app": "web", "tier": "front", "n": "5"}));
        let yes = [
            "",
            "app=web",
            "app==web",
            "app!=db",
            "missing!=x",
            "app in (web,db)",
            "app notin (db)",
            "missing notin (x)",
            "app",
            "!missing",
            "app=web,tier=front",
            "n>4",
            "n<6",
            "app in (web),tier notin (back),!x",
        ];
        for s in yes {
            assert!(sel(s).matches(&ls), "{s:?} should match");
        }
        let no = [
            "app=db",
            "missing=x",
            "app!=web",
            "app in (db)",
            "missing in (x)",
            "app notin (web)",
            "missing",
            "!app",
            "n>5",
            "n<5",
            "missing>1",
            "app>1",
            "app=web,tier=back",
            "missing=",
        ];
        for s in no {
            assert!(!sel(s).matches(&ls), "{s:?} should not match");
        }
        assert!(sel("x=").matches(&labels(json!({"x": ""}))));
        assert!(sel("x in ()").matches(&labels(json!({"x": ""}))));
        assert!(sel("").matches(&Map::new()));
        assert!(sel("n>0").matches(&labels(json!({"n": "1"}))));
        // Requirement values must be label values, so negative numbers are rejected (as in Go).
        assert!(LabelSelector::parse("n>-1").is_err());
    }

    #[test]
    fn empty_everything_nothing() {
        assert!(sel("").is_empty());
        assert!(!sel("a").is_empty());
        assert!(LabelSelector::everything().is_empty());
        let nothing = LabelSelector::nothing();
        assert!(!nothing.is_empty());
        assert!(nothing.is_nothing());
        assert!(!nothing.matches(&Map::new()));
    }

    #[test]
    fn requires_exact_match() {
        let s = sel("a=1,b in (2),c in (3,4),d!=5");
        assert_eq!(s.requires_exact_match("a"), Some("1"));
        assert_eq!(s.requires_exact_match("b"), Some("2"));
        assert_eq!(s.requires_exact_match("c"), None);
        assert_eq!(s.requires_exact_match("d"), None);
        assert_eq!(s.requires_exact_match("e"), None);
    }

    #[test]
    fn from_json() {
        let s = LabelSelector::from_label_selector_json(&json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["front", "back"]},
                {"key": "env", "operator": "NotIn", "values": ["prod"]},
                {"key": "team", "operator": "Exists"},
                {"key": "legacy", "operator": "DoesNotExist", "values": []},
            ]
        }))
        .unwrap();
        assert_eq!(
            s.to_string(),
            "app=web,env notin (prod),!legacy,team,tier in (back,front)"
        );
        assert!(s.matches(&labels(json!({"app": "web", "tier": "front", "team": "x"}))));
        assert!(!s.matches(&labels(json!({"app": "web", "tier": "front"}))));
        assert!(!s.matches(&labels(
            json!({"app": "web", "tier": "front", "team": "x", "env": "prod"})
        )));
        assert!(!s.matches(&labels(
            json!({"app": "web", "tier": "front", "team": "x", "legacy": ""})
        )));

        let null = LabelSelector::from_label_selector_json(&Value::Null).unwrap();
        assert!(null.is_nothing());
        assert!(!null.matches(&Map::new()));
        let all = LabelSelector::from_label_selector_json(&json!({})).unwrap();
        assert!(all.is_empty());
        assert!(all.matches(&Map::new()));
        let all = LabelSelector::from_label_selector_json(
            &json!({"matchLabels": {}, "matchExpressions": []}),
        )
        .unwrap();
        assert!(all.is_empty());
    }

    #[test]
    fn from_json_errors() {
        let err = |v: Value| LabelSelector::from_label_selector_json(&v).unwrap_err();
        assert_eq!(
            err(json!({"matchExpressions": [{"key": "a", "operator": "Foo"}]})),
            "\"Foo\" is not a valid label selector operator"
        );
        assert_eq!(
            err(json!({"matchExpressions": [{"key": "a", "operator": "In"}]})),
            "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty"
        );
        assert_eq!(
            err(json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]})),
            "values: Invalid value: []string{\"x\"}: values set must be empty for exists and does not exist"
        );
        assert_eq!(
            err(json!({"matchLabels": {"bad key": "x"}})),
            format!("key: Invalid value: \"bad key\": {NAME_PART_MSG}")
        );
        assert_eq!(
            err(json!({"matchLabels": {"k": "bad value"}})),
            format!("values[0][k]: Invalid value: \"bad value\": {LABEL_VALUE_MSG}")
        );
        assert_eq!(
            err(json!({"matchExpressions": [{"key": "bad key", "operator": "In"}]})),
            format!(
                "[key: Invalid value: \"bad key\": {NAME_PART_MSG}, values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty]"
            )
        );
        assert!(LabelSelector::from_label_selector_json(&json!("x")).is_err());
        assert!(LabelSelector::from_label_selector_json(&json!({"matchLabels": []})).is_err());
        assert!(
            LabelSelector::from_label_selector_json(&json!({"matchLabels": {"a": 1}})).is_err()
        );
        assert!(LabelSelector::from_label_selector_json(&json!({"matchExpressions": {}})).is_err());
        assert!(
            LabelSelector::from_label_selector_json(&json!({"matchExpressions": [1]})).is_err()
        );
        assert!(
            LabelSelector::from_label_selector_json(
                &json!({"matchExpressions": [{"key": "a", "operator": "In", "values": [1]}]})
            )
            .is_err()
        );
    }

    #[test]
    fn requirement_new() {
        assert!(Requirement::new("a", Operator::Equals, vec![]).is_err());
        assert_eq!(
            Requirement::new("a", Operator::Equals, vec!["x".into(), "y".into()]).unwrap_err(),
            "values: Invalid value: []string{\"x\", \"y\"}: exact-match compatibility requires one single value"
        );
        assert_eq!(
            Requirement::new("a", Operator::GreaterThan, vec![]).unwrap_err(),
            "values: Invalid value: []string(nil): for 'Gt', 'Lt' operators, exactly one value is required"
        );
        let r = Requirement::new("a", Operator::LessThan, vec!["3".into()]).unwrap();
        assert!(r.matches(&labels(json!({"a": "-4"}))));
        assert!(r.matches(&labels(json!({"a": "2"}))));
        assert!(!r.matches(&labels(json!({"a": "3"}))));
        assert!(!r.matches(&labels(json!({"a": "x"}))));
        assert_eq!(r.to_string(), "a<3");
        assert_eq!(Operator::NotIn.as_str(), "notin");
    }

    #[test]
    fn lexer_tokens() {
        let lex_all = |s: &str| {
            let p = Parser::new(s);
            p.items
                .iter()
                .map(|(t, l)| (*t, l.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            lex_all("x!=y"),
            vec![
                (Token::Identifier, "x".to_string()),
                (Token::NotEquals, "!=".to_string()),
                (Token::Identifier, "y".to_string()),
                (Token::EndOfString, String::new()),
            ]
        );
        assert_eq!(
            lex_all("!!=(),<>==")
                .iter()
                .map(|(t, _)| *t)
                .collect::<Vec<_>>(),
            vec![
                Token::DoesNotExist,
                Token::NotEquals,
                Token::OpenPar,
                Token::ClosedPar,
                Token::Comma,
                Token::LessThan,
                Token::GreaterThan,
                Token::DoubleEquals,
                Token::EndOfString,
            ]
        );
        assert_eq!(lex_all("in notin")[0].0, Token::In);
        assert_eq!(lex_all("in notin")[1].0, Token::NotIn);
        assert_eq!(lex_all("\u{0}x")[0].0, Token::EndOfString);
        assert!(Token::Error != Token::EndOfString);
    }

    #[test]
    fn no_panics_on_odd_input() {
        for s in [
            "\u{0}",
            "a\u{0}b",
            "é=ü",
            "日本=x",
            "x in (é)",
            "(((",
            ")))",
            ",,,",
            "!!!",
            "===",
            "x in ((",
            "x in (a,,,)",
            "x in (,",
            "x in (",
            "x=\u{0}",
            "a>",
            "a<",
            "a>\u{0}",
        ] {
            let _ = LabelSelector::parse(s);
            let _ = FieldSelector::parse(s);
        }
        assert!(LabelSelector::parse("é").is_err());
        assert!(sel("a\u{0}").matches(&labels(json!({"a": "x"}))));
    }

    // --- field selectors -------------------------------------------------------------------

    fn fsel(s: &str) -> FieldSelector {
        FieldSelector::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    fn getter(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |f| {
            pairs
                .iter()
                .find(|(k, _)| *k == f)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn field_parse_good() {
        for s in [
            "",
            "a=b",
            "a=b,c=d",
            "a!=b",
            "a=b,c!=d",
            "metadata.name=foo",
            "a=",
            "x=a\\,b",
            "x=a\\=b",
            "x=a\\\\b",
        ] {
            assert_eq!(fsel(s).to_string(), s, "{s:?}");
        }
        assert_eq!(fsel("a==b").to_string(), "a=b");
        assert_eq!(fsel("x=a,a=x").to_string(), "a=x,x=a");
        assert_eq!(fsel("x=a,a=x"), fsel("a=x,x=a"));
        assert!(fsel("").is_empty());
        assert!(fsel(",").is_empty());
        assert!(fsel("=").is_empty());
        assert!(!fsel("a=").is_empty());
        assert!(!fsel("=a").is_empty());
        let s = fsel("x=a\\,b\\=c\\\\d");
        assert_eq!(s.requirements()[0].value, "a,b=c\\d");
        // No whitespace trimming in field selectors.
        let s = fsel("a = b");
        assert_eq!(s.requirements()[0].field, "a ");
        assert_eq!(s.requirements()[0].value, " b");
    }

    #[test]
    fn field_parse_errors() {
        let err = |s: &str| FieldSelector::parse(s).unwrap_err();
        assert_eq!(err("a"), "invalid selector: 'a'; can't understand 'a'");
        assert_eq!(
            err("x=a,b"),
            "invalid selector: 'x=a,b'; can't understand 'b'"
        );
        assert_eq!(
            err("x=a=b"),
            "invalid field selector: unescaped character in value: 61"
        );
        assert_eq!(
            err("x=a\\b"),
            "invalid field selector: invalid escape sequence: \\b"
        );
        assert_eq!(
            err("x=a\\"),
            "invalid field selector: invalid escape sequence: \\"
        );
        assert!(FieldSelector::parse("x==a==b").is_err());
        assert!(FieldSelector::parse("x<a").is_err());
    }

    #[test]
    fn field_matching() {
        let get = getter(&[("metadata.name", "foo"), ("status.phase", "Running")]);
        assert!(fsel("").matches(&get));
        assert!(fsel("metadata.name=foo").matches(&get));
        assert!(fsel("metadata.name==foo").matches(&get));
        assert!(!fsel("metadata.name=bar").matches(&get));
        assert!(fsel("metadata.name!=bar").matches(&get));
        assert!(!fsel("metadata.name!=foo").matches(&get));
        assert!(fsel("metadata.name=foo,status.phase=Running").matches(&get));
        assert!(!fsel("metadata.name=foo,status.phase!=Running").matches(&get));
        // Absent fields read as "".
        assert!(fsel("spec.nodeName=").matches(&get));
        assert!(fsel("spec.nodeName!=node1").matches(&get));
        assert!(!fsel("spec.nodeName=node1").matches(&get));
        let get = getter(&[("x", "a,b")]);
        assert!(fsel("x=a\\,b").matches(&get));
    }

    #[test]
    fn field_names_and_exact_match() {
        let s = fsel("metadata.name=foo,spec.nodeName!=n,metadata.namespace=ns");
        assert_eq!(
            s.fields().collect::<Vec<_>>(),
            vec!["metadata.name", "metadata.namespace", "spec.nodeName"]
        );
        assert_eq!(s.requires_exact_match("metadata.name"), Some("foo"));
        assert_eq!(s.requires_exact_match("spec.nodeName"), None);
        assert_eq!(s.requires_exact_match("other"), None);
        assert_eq!(escape_field_value("a,b=c\\"), "a\\,b\\=c\\\\");
        assert_eq!(unescape_field_value("plain").unwrap(), "plain");
    }

    #[test]
    fn split_terms_like_go() {
        assert_eq!(split_terms(""), Vec::<&str>::new());
        assert_eq!(split_terms(","), vec!["", ""]);
        assert_eq!(split_terms("a=b\\,c,d=e"), vec!["a=b\\,c", "d=e"]);
        assert_eq!(split_terms("a=b\\\\,c"), vec!["a=b\\\\", "c"]);
        assert_eq!(
            split_term("a!=b"),
            Some(("a", FieldOperator::NotEquals, "b"))
        );
        assert_eq!(split_term("é=ü"), Some(("é", FieldOperator::Equals, "ü")));
        assert_eq!(split_term("ab"), None);
    }
}
