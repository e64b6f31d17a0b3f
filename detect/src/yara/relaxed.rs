//! Relaxed rules: each rule of a unit reduced to the strings its condition asks for,
//! a *monotone* form that holds wherever the rule holds and reads no module.
//!
//! Two things come of it. A scan with rules that import `pe` builds the module's whole
//! structure on every scan (tens of microseconds for a command line), so a value is
//! first scanned with the unit's relaxed rules, and with the unit itself only if one of
//! them matched. And because a relaxed rule that matches a value also matches any data
//! that holds the value, the values a chunk of rows has for one unit are joined by
//! [`SEPARATOR`] and scanned at once with the relaxed rules (the fixed cost of a yara-x
//! scan paid once for the group): where nothing matches the group, nothing matches any
//! of its values; where something does, the values its matches fall in are scanned
//! alone (all of them if a string reached yara-x's cap on matches), and only those
//! answers are kept, so a match that spans two values is never reported.
//!
//! Relaxing a condition keeps `and` and `or`, and the parts that ask for strings: `$a`,
//! `any of (..)`, `all of them`, `2 of ($x*)`, `50% of them`, `#a > 2`, `#a >= 1`;
//! `$a at 0` and `$a in (..)` become `$a`. A regular expression's `^` and `$` at its
//! ends are dropped, and so is every `fullword` (both match more); a string anchored
//! elsewhere is left out. Every other part (`not ..`, `filesize < 10`,
//! `uint16(0) == 0x5a4d`, module fields, loops, other rules) becomes `true`. A rule whose relaxed form would hold without any
//! string (a condition on `filesize` alone) leaves its unit without relaxed rules, as
//! does a `global` rule. So that every string stays used (yara-x refuses unused
//! strings), each relaxed condition is followed by `or (all of them and filesize < 0)`,
//! which never holds.

use std::ops::Range;

use yara_x_parser::ast::{
    Expr, OfItems, Pattern, PatternSet, Quantifier, RuleFlags, WithSpan, AST,
};
use yara_x_parser::cst::{CSTStream, Event, SyntaxKind};
use yara_x_parser::Parser;

/// Put between two values of a group: not a letter or digit in ASCII nor in UTF-16, so
/// `fullword` strings and word boundaries at a value's ends stay so.
pub(super) const SEPARATOR: &[u8] = b"\n\0\n\0";

/// The relaxed source of `unit` (a rule file or part of one), without imports; `None`
/// when it cannot be read, has a `global` rule, or a rule whose relaxed form needs no
/// string.
pub(super) fn relaxed_source(unit: &str) -> Option<String> {
    let tree = AST::from(unit);
    if !tree.errors().is_empty() {
        return None;
    }
    let mut edits: Vec<(Range<usize>, &str)> = Vec::new();
    // Each condition's exact extent (the syntax tree's spans of some expressions leave
    // out a closing parenthesis), in file order.
    let mut conditions = Vec::new();
    let mut in_condition = false;
    for event in CSTStream::from(Parser::new(unit.as_bytes())) {
        match event {
            Event::Begin {
                kind: SyntaxKind::IMPORT_STMT,
                span,
            } => edits.push((span.range(), "")),
            // `fullword` checks the bytes beside a match, which in a group are the
            // separator or another value (xored, for `xor` strings; after a greedy
            // regex's tail): dropped, the relaxed strings match more.
            Event::Token {
                kind: SyntaxKind::FULLWORD_KW,
                span,
            } => edits.push((span.range(), "")),
            Event::Begin {
                kind: SyntaxKind::CONDITION_BLK,
                ..
            } => in_condition = true,
            Event::Begin {
                kind: SyntaxKind::BOOLEAN_EXPR,
                span,
            } if in_condition => {
                conditions.push(span.range());
                in_condition = false;
            }
            _ => {}
        }
    }
    let mut conditions = conditions.into_iter();
    let mut rules = 0;
    for rule in tree.rules() {
        rules += 1;
        let condition = conditions.next()?;
        if rule.flags.contains(RuleFlags::Global) {
            return None;
        }
        // Regular expressions anchored at their start or end lose the anchor (which
        // matches more); those anchored elsewhere stay out of the relaxed form.
        let mut anchored_patterns: Vec<&str> = Vec::new();
        for pattern in rule.patterns.iter().flatten() {
            let Pattern::Regexp(r) = pattern else {
                continue;
            };
            let (src, dot_all) = (r.regexp.src, r.regexp.dot_matches_new_line);
            if !anchored(src, dot_all) {
                continue;
            }
            let lead = src.starts_with('^');
            let trail = src.ends_with('$')
                && src[..src.len() - 1]
                    .bytes()
                    .rev()
                    .take_while(|b| *b == b'\\')
                    .count()
                    % 2
                    == 0;
            let bare = &src[usize::from(lead)..src.len() - usize::from(trail)];
            let at = r.regexp.span().range().start + 1;
            if (lead || trail)
                && !bare.is_empty()
                && !anchored(bare, dot_all)
                && unit.get(at..at + src.len()) == Some(src)
            {
                if lead {
                    edits.push((at..at + 1, ""));
                }
                if trail {
                    edits.push((at + src.len() - 1..at + src.len(), ""));
                }
            } else {
                anchored_patterns.push(pattern.identifier().name);
            }
        }
        let anchored = anchored_patterns;
        let cx = Context {
            unit,
            anchored: &anchored,
        };
        if !relax(&rule.condition, &cx, &mut edits)? {
            return None;
        }
        if rule.patterns.as_ref().is_some_and(|p| !p.is_empty()) {
            edits.push((condition.start..condition.start, "("));
            edits.push((
                condition.end..condition.end,
                ") or (all of them and filesize < 0)",
            ));
        }
    }
    if rules == 0 || conditions.next().is_some() {
        return None;
    }
    // From the end: at one place, a replacement before an insertion.
    edits.sort_by_key(|(r, _)| std::cmp::Reverse((r.start, r.end)));
    let mut out = unit.to_string();
    for (range, with) in edits {
        out.replace_range(range, with);
    }
    Some(out)
}

/// What relaxing one rule's condition needs to know.
struct Context<'a> {
    unit: &'a str,
    /// The rule's regular expressions still anchored in the relaxed source (an anchor
    /// not at an end, or one that could not be read): left out of the relaxed form.
    anchored: &'a [&'a str],
}

/// Adds to `edits` the parts of `expr` that become `true`; whether the relaxed form
/// needs a string to hold (`None` when the source cannot be read so).
fn relax<'u>(
    expr: &Expr<'u>,
    cx: &Context<'_>,
    edits: &mut Vec<(Range<usize>, &'u str)>,
) -> Option<bool> {
    match expr {
        Expr::And(e) => {
            let mut needs = false;
            for operand in e.operands() {
                needs |= relax(operand, cx, edits)?;
            }
            Some(needs)
        }
        Expr::Or(e) => {
            let mut needs = true;
            for operand in e.operands() {
                needs &= relax(operand, cx, edits)?;
            }
            Some(needs)
        }
        Expr::False { .. } => Some(true),
        other if asks_for_strings(other, cx) => Some(true),
        // `$a at 0`, `$a in (0..100)`: `$a` is there.
        Expr::PatternMatch(m)
            if m.identifier.name != "$" && !cx.anchored.contains(&m.identifier.name) =>
        {
            let range = closed(cx.unit, other_range(expr, cx.unit));
            cx.unit.get(range.clone())?;
            edits.push((range, m.identifier.name));
            Some(true)
        }
        other => {
            let range = closed(cx.unit, other_range(other, cx.unit));
            cx.unit.get(range.clone())?;
            edits.push((range, "true"));
            Some(false)
        }
    }
}

/// Whether `expr` asks for strings in a way more data cannot undo, and needs one.
fn asks_for_strings(expr: &Expr<'_>, cx: &Context<'_>) -> bool {
    let free = |name: &str| name != "$" && !cx.anchored.contains(&name);
    match expr {
        Expr::PatternMatch(m) => m.anchor.is_none() && free(m.identifier.name),
        Expr::Of(of) => {
            let at_least_one = match &of.quantifier {
                Quantifier::None { .. } => false,
                Quantifier::All { .. } | Quantifier::Any { .. } => true,
                Quantifier::Expr(e) | Quantifier::Percentage(e) => {
                    matches!(e, Expr::LiteralInteger(i) if i.value >= 1)
                }
            };
            let set = match &of.items {
                OfItems::PatternSet(PatternSet::Them { .. }) => cx.anchored.is_empty(),
                OfItems::PatternSet(PatternSet::Set(items)) => !cx.anchored.iter().any(|a| {
                    items
                        .iter()
                        .any(|i| i.matches(&yara_x_parser::ast::Ident::new(a)))
                }),
                OfItems::BoolExprTuple(_) => false,
            };
            at_least_one && set && of.anchor.is_none()
        }
        // `#a > n` (n ≥ 0), `#a >= n` (n ≥ 1): more data, more matches.
        Expr::Gt(b) | Expr::Ge(b) => {
            let least = if matches!(expr, Expr::Gt(_)) { 0 } else { 1 };
            matches!(&b.lhs, Expr::PatternCount(c) if c.range.is_none() && free(&c.identifier.name.replacen('#', "$", 1)))
                && matches!(&b.rhs, Expr::LiteralInteger(i) if i.value >= least)
        }
        _ => false,
    }
}

/// Whether a regular expression holds an anchor to the start or end of the data or of
/// a line (or cannot be read: taken as anchored).
fn anchored(src: &str, dot_all: bool) -> bool {
    use regex_syntax::hir::{Hir, HirKind, Look};
    fn has_anchor(hir: &Hir) -> bool {
        match hir.kind() {
            HirKind::Look(look) => matches!(
                look,
                Look::Start
                    | Look::End
                    | Look::StartLF
                    | Look::EndLF
                    | Look::StartCRLF
                    | Look::EndCRLF
            ),
            HirKind::Repetition(r) => has_anchor(&r.sub),
            HirKind::Capture(c) => has_anchor(&c.sub),
            HirKind::Concat(hs) | HirKind::Alternation(hs) => hs.iter().any(has_anchor),
            HirKind::Empty | HirKind::Literal(_) | HirKind::Class(_) => false,
        }
    }
    match regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .dot_matches_new_line(dot_all)
        .build()
        .parse(src)
    {
        Ok(hir) => has_anchor(&hir),
        Err(_) => true,
    }
}

/// The text range of a part of a condition.
fn other_range(expr: &Expr<'_>, unit: &str) -> Range<usize> {
    with_object(unit, expr.span().range())
}

/// `range` grown over the parentheses its text opens and leaves open or closes
/// without opening: the parser's span of `1 of ($a*)` ends before the last `)`, and
/// that of `(#a + #b) > 2` starts after the first `(` (text in quotes, regular
/// expressions and comments is not counted; a wrong count most likely leaves a source
/// that does not compile, and then no relaxed rules).
fn closed(unit: &str, range: Range<usize>) -> Range<usize> {
    let Some(text) = unit.get(range.clone()) else {
        return range;
    };
    let bytes = text.as_bytes();
    let mut open = 0i64;
    let mut i = 0;
    // Past the end of what starts at `i` and ends with `end` (a backslash escapes).
    let skip = |mut i: usize, end: u8| {
        while i < bytes.len() && bytes[i] != end {
            i += if bytes[i] == b'\\' { 2 } else { 1 };
        }
        i + 1
    };
    while i < bytes.len() {
        match (bytes[i], bytes.get(i + 1)) {
            (b'"', _) => i = skip(i + 1, b'"'),
            (b'/', Some(b'/')) => i = skip(i + 2, b'\n'),
            (b'/', Some(b'*')) => {
                i = text[i + 2..]
                    .find("*/")
                    .map_or(bytes.len(), |at| i + 2 + at + 2);
            }
            // A regular expression (YARA divides with `\`).
            (b'/', _) => i = skip(i + 1, b'/'),
            (b'(', _) => {
                open += 1;
                i += 1;
            }
            (b')', _) => {
                open -= 1;
                i += 1;
            }
            _ => i += 1,
        }
    }
    let bytes = unit.as_bytes();
    let mut start = range.start;
    while open < 0 {
        let mut before = start;
        while before > 0 && bytes[before - 1].is_ascii_whitespace() {
            before -= 1;
        }
        if before == 0 || bytes[before - 1] != b'(' {
            break;
        }
        start = before - 1;
        open += 1;
    }
    let mut end = range.end;
    while open > 0 {
        let mut next = end;
        while next < bytes.len() && bytes[next].is_ascii_whitespace() {
            next += 1;
        }
        if bytes.get(next) != Some(&b')') {
            break;
        }
        end = next + 1;
        open -= 1;
    }
    start..end
}

/// `range` grown back over the object a method call or field access starts with: the
/// parser's span of `pe.is_dll()` covers `is_dll()` alone.
fn with_object(unit: &str, range: Range<usize>) -> Range<usize> {
    let bytes = unit.as_bytes();
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut start = range.start;
    while start > 0 && bytes[start - 1] == b'.' {
        start -= 1;
        loop {
            while start > 0 && ident(bytes[start - 1]) {
                start -= 1;
            }
            // An index (`sections[i].name`): back to its opening bracket.
            if start > 0 && bytes[start - 1] == b']' {
                let mut depth = 0usize;
                while start > 0 {
                    start -= 1;
                    match bytes[start] {
                        b']' => depth += 1,
                        b'[' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                continue;
            }
            break;
        }
    }
    start..range.end
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The relaxed condition of the only rule of `source`, without the clause that
    /// keeps the strings used; checks that the relaxed source compiles.
    fn relaxed(source: &str) -> Option<String> {
        let out = relaxed_source(source)?;
        let mut compiler = yara_x::Compiler::new();
        compiler
            .add_source(out.as_str())
            .unwrap_or_else(|e| panic!("{e}\n{out}"));
        let condition = out.split("condition:").nth(1)?.trim();
        let condition = condition.strip_suffix('}').unwrap_or(condition).trim();
        Some(
            condition
                .strip_suffix(" or (all of them and filesize < 0)")
                .unwrap_or(condition)
                .to_string(),
        )
    }

    fn rule(condition: &str) -> String {
        format!(
            "import \"pe\"\nrule r {{ strings: $a = \"abc\" $b = {{ 41 42 }} $c = /x[0-9]+y\\b/ $d = /^z/ $e = /a(?m)^b/ condition: {condition} }}"
        )
    }

    #[test]
    fn conditions_keep_what_asks_for_strings_and_the_rest_becomes_true() {
        for (condition, expected) in [
            ("$a", "($a)"),
            ("$a and not $b", "($a and true)"),
            ("$a and not pe.number_of_signatures > 0", "($a and true)"),
            (
                "(pe.is_dll() or $b) and #a > 2",
                "((true or $b) and #a > 2)",
            ),
            (
                "uint16(0) == 0x5a4d and filesize < 40KB and 1 of ($a, $b)",
                "(true and true and 1 of ($a, $b))",
            ),
            ("$a at 0 and $c", "($a and $c)"),
            ("$b in (0..100) or $c", "($b or $c)"),
            (
                "#a >= 1 and 2 of ($a, $b, $c)",
                "(#a >= 1 and 2 of ($a, $b, $c))",
            ),
            ("$d and $a", "($d and $a)"),
            ("$e and $a", "(true and $a)"),
            ("$a and not 1 of ($b, $c)", "($a and true)"),
            ("$a and not ($b or $c)", "($a and true)"),
            ("$a and (#a + #b) > 2", "($a and true)"),
            (
                "for any i in (0..pe.number_of_sections) : (pe.sections[i].name == \".x\") and $b",
                "(true and $b)",
            ),
        ] {
            assert_eq!(
                relaxed(&rule(condition)).as_deref(),
                Some(expected),
                "{condition}"
            );
        }
    }

    #[test]
    fn regular_expressions_lose_the_anchors_at_their_ends() {
        let out =
            relaxed_source("rule r { strings: $a = /^ab\\$/ $b = /^cd$/ condition: $a and $b }")
                .unwrap();
        assert!(out.contains("$a = /ab\\$/"), "{out}");
        assert!(out.contains("$b = /cd/"), "{out}");
    }

    #[test]
    fn fullword_is_dropped() {
        let out = relaxed_source(
            "rule r { strings: $a = \"evil\" xor fullword $b = /evil\\W*/ fullword condition: $a or $b }",
        )
        .unwrap();
        assert!(!out.contains("fullword"), "{out}");
        assert!(out.contains("$a = \"evil\" xor"), "{out}");
    }

    #[test]
    fn rules_that_would_need_no_string_leave_the_unit_unrelaxed() {
        for condition in [
            "filesize < 100",
            "$a or filesize < 100",
            "not $a",
            "none of them",
            "#a >= 0",
            "0 of them",
            "any of them",
            "any of ($a, $e)",
        ] {
            assert_eq!(relaxed(&rule(condition)), None, "{condition}");
        }
        assert_eq!(
            relaxed_source("global rule g { condition: filesize < 10 }\nrule r { strings: $a = \"x\" condition: $a }"),
            None
        );
    }

    #[test]
    fn a_span_grows_over_the_object_of_a_call() {
        let text = "x and pe.sections[pe.number_of_sections - 1].name() == 1";
        let at = text.find("name").unwrap();
        assert_eq!(&text[with_object(text, at..text.len())], &text[6..]);
        assert_eq!(with_object(text, 0..1), 0..1);
    }

    #[test]
    fn anchors_are_told_from_word_boundaries() {
        assert!(anchored("^abc", false));
        assert!(anchored("abc$", false));
        assert!(anchored("(?m)^abc", false));
        assert!(!anchored("\\babc\\b", false));
        assert!(!anchored("[^\\\\]\\$env", false));
    }
}
