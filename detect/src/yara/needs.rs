//! What a YARA rule needs for it to match: byte strings (*atoms*) of which at least one
//! must be in the data for the rule's condition to be true, read from the rule's source
//! (the yara-x parser's syntax tree). The prefilter ([`super::prefilter`]) passes over
//! values that hold none.
//!
//! - a text string needs its bytes (their UTF-16LE form when `wide`, each key's form when
//!   `xor`); a hex string its longest run of fixed bytes; a regular expression a literal
//!   every match holds; `base64` strings need nothing that can be told;
//! - `$a`, `$a at ..`, `$a in ..`, counts that need one match (`#a > n`, `#a >= 1`,
//!   `#a > #b + #c`) and reads at a string's offset (`uint32(@a + 8) == ..`) need `$a`'s
//!   atoms; `uint16(0) == v` (and `uint8`, `uint32`, big-endian forms) needs the data to
//!   start with `v`'s bytes, and so do comparisons of `pe`, `dotnet` and `elf` fields (and
//!   `pe` functions) with what their zero value is not (`contains` a non-empty string
//!   too), `pe.exports(..)`, `pe.imports(..)` and `for any` loops over `pe` fields;
//! - `A and B` needs what either needs (the most selective is kept), `A or B` what one of
//!   them needs, `any of (..)` / `n of (..)` one of the members that can be told when
//!   fewer than n cannot, `all of` what any member needs; an empty external variable
//!   (the THOR names) equal to a non-empty string, or matching a regular expression that
//!   matches no empty string, never holds; `not`, `none of`, other loops,
//!   other modules' functions, `filesize` alone, a `with` that renames a function or
//!   module, and other rules' names need nothing that can be told.
//!
//! Atoms are looked for ignoring ASCII case: a superset of what `nocase` and exact
//! strings match.

use regex_syntax::hir::{Hir, HirKind};
use yara_x_parser::ast::{
    self, Expr, HexToken, OfItems, Pattern, PatternSet, Quantifier, RuleFlags, AST,
};

/// Something the data must hold for a rule to match.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum Atom {
    /// These bytes, anywhere (ASCII case ignored).
    Anywhere(Vec<u8>),
    /// The data starts with these bytes (exactly).
    Prefix(Vec<u8>),
}

/// What a condition needs: one of these atoms; `None` where nothing can be told.
pub(super) type Need = Option<Vec<Atom>>;

/// How selective a need is: prefixes cost nothing to check and rarely hold; among
/// atoms found anywhere, the shortest decides how often the set is met.
fn selectivity(atoms: &[Atom]) -> usize {
    let shortest = atoms
        .iter()
        .map(|a| match a {
            Atom::Anywhere(b) => b.len(),
            Atom::Prefix(b) => 64 + b.len(),
        })
        .min();
    shortest.unwrap_or(usize::MAX)
}

/// The more selective of two needs (both must hold, so either is enough to check).
fn either(a: Need, b: Need) -> Need {
    match (a, b) {
        (Some(a), Some(b)) => Some(if selectivity(&b) > selectivity(&a) {
            b
        } else {
            a
        }),
        (a, None) => a,
        (None, b) => b,
    }
}

/// One of two needs (one of the two must hold).
fn one_of(a: Need, b: Need) -> Need {
    let (mut a, b) = (a?, b?);
    a.extend(b);
    Some(a)
}

/// `bytes` as UTF-16LE code units, the form a `wide` string matches.
pub(super) fn widened(bytes: &[u8]) -> Vec<u8> {
    bytes.iter().flat_map(|&b| [b, 0]).collect()
}

/// The forms of a literal a string with these modifiers matches.
fn forms(bytes: Vec<u8>, modifiers: &ast::PatternModifiers<'_>) -> Need {
    if bytes.is_empty() {
        return None;
    }
    let wide = modifiers.wide().is_some();
    let ascii = modifiers.ascii().is_some() || !wide;
    let mut atoms = Vec::new();
    if wide {
        atoms.push(Atom::Anywhere(widened(&bytes)));
    }
    if ascii {
        atoms.push(Atom::Anywhere(bytes));
    }
    Some(atoms)
}

/// The longest run of fixed bytes of a hex string, at its top level.
pub(super) fn hex_run(tokens: &ast::HexSubPattern) -> Option<Vec<u8>> {
    let mut best: Vec<u8> = Vec::new();
    let mut run: Vec<u8> = Vec::new();
    for token in tokens.iter() {
        match token {
            HexToken::Byte(b) if b.mask == 0xFF => {
                run.push(b.value);
                continue;
            }
            _ => {}
        }
        if run.len() > best.len() {
            best = std::mem::take(&mut run);
        }
        run.clear();
    }
    if run.len() > best.len() {
        best = run;
    }
    (!best.is_empty()).then_some(best)
}

/// Literals one of which every match of `hir` holds.
fn regex_literals(hir: &Hir) -> Option<Vec<Vec<u8>>> {
    match hir.kind() {
        HirKind::Literal(lit) => (!lit.0.is_empty()).then(|| vec![lit.0.to_vec()]),
        HirKind::Capture(c) => regex_literals(&c.sub),
        HirKind::Repetition(r) if r.min >= 1 => regex_literals(&r.sub),
        HirKind::Alternation(subs) => {
            let mut all = Vec::new();
            for sub in subs {
                all.extend(regex_literals(sub)?);
            }
            Some(all)
        }
        HirKind::Concat(subs) => {
            // Adjacent literals make one longer literal; otherwise the child that needs
            // the longest shortest literal.
            let mut best: Option<Vec<Vec<u8>>> = None;
            let mut consider = |found: Option<Vec<Vec<u8>>>| {
                let score = |set: &Vec<Vec<u8>>| set.iter().map(Vec::len).min().unwrap_or(0);
                if let Some(found) = found {
                    if best.as_ref().is_none_or(|b| score(&found) > score(b)) {
                        best = Some(found);
                    }
                }
            };
            let mut run: Vec<u8> = Vec::new();
            for sub in subs {
                if let HirKind::Literal(lit) = sub.kind() {
                    run.extend_from_slice(&lit.0);
                    continue;
                }
                if !run.is_empty() {
                    consider(Some(vec![std::mem::take(&mut run)]));
                }
                consider(regex_literals(sub));
            }
            if !run.is_empty() {
                consider(Some(vec![run]));
            }
            best
        }
        _ => None,
    }
}

/// What a regular expression string needs. Parsed as bytes, case folded away (atoms are
/// looked for ignoring ASCII case anyway); a pattern this parser does not read needs
/// nothing that can be told.
fn regex_need(regexp: &ast::Regexp<'_>, modifiers: &ast::PatternModifiers<'_>) -> Need {
    let hir = regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .case_insensitive(false)
        .dot_matches_new_line(regexp.dot_matches_new_line)
        .build()
        .parse(regexp.src)
        .ok()?;
    let literals = regex_literals(&hir)?;
    let mut atoms = Vec::new();
    for literal in literals {
        atoms.extend(forms(literal, modifiers)?);
    }
    Some(atoms)
}

/// What one string (pattern) needs. An `xor` string needs one of its forms under each
/// key of its range; a `base64` one nothing that is told here.
fn pattern_need(pattern: &Pattern<'_>) -> Need {
    let modifiers = pattern.modifiers();
    if modifiers.base64().is_some() || modifiers.base64wide().is_some() {
        return None;
    }
    let plain = match pattern {
        Pattern::Text(p) => forms(p.text.value.to_vec(), modifiers)?,
        Pattern::Hex(p) => vec![Atom::Anywhere(hex_run(&p.sub_patterns)?)],
        Pattern::Regexp(p) => regex_need(&p.regexp, modifiers)?,
    };
    let Some(ast::PatternModifier::Xor { start, end, .. }) = modifiers.xor() else {
        return Some(plain);
    };
    let mut keyed = Vec::new();
    for atom in &plain {
        let Atom::Anywhere(bytes) = atom else {
            return None;
        };
        for key in *start..=*end {
            keyed.push(Atom::Anywhere(bytes.iter().map(|b| b ^ key).collect()));
        }
    }
    Some(keyed)
}

/// A rule's strings by identifier (`$a`), with what each needs.
struct Strings<'r> {
    needs: Vec<(&'r str, Need)>,
}

impl Strings<'_> {
    fn of(&self, identifier: &str) -> Need {
        self.needs
            .iter()
            .find(|(id, _)| *id == identifier)
            .and_then(|(_, need)| need.clone())
    }

    /// The needs of the strings a set names.
    fn members(&self, set: &PatternSet<'_>) -> Vec<Need> {
        match set {
            PatternSet::Them { .. } => self.needs.iter().map(|(_, n)| n.clone()).collect(),
            PatternSet::Set(items) => self
                .needs
                .iter()
                .filter(|(id, _)| items.iter().any(|i| i.matches(&ast::Ident::new(id))))
                .map(|(_, n)| n.clone())
                .collect(),
        }
    }
}

/// An integer literal's value.
fn integer(expr: &Expr<'_>) -> Option<i64> {
    match expr {
        Expr::LiteralInteger(i) => Some(i.value),
        _ => None,
    }
}

/// `#a` (named): the identifier of the string it counts (`$a`).
fn count_of(expr: &Expr<'_>) -> Option<String> {
    match expr {
        Expr::PatternCount(c) => {
            let name = c.identifier.name.strip_prefix('#')?;
            (!name.is_empty()).then(|| format!("${name}"))
        }
        _ => None,
    }
}

/// `uintN(0)` / `uintNbe(0)`: how many bytes it reads and whether big-endian.
fn read_at_zero(expr: &Expr<'_>) -> Option<(usize, bool)> {
    let Expr::FuncCall(call) = expr else {
        return None;
    };
    if call.object.is_some() || call.args.len() != 1 || integer(&call.args[0]) != Some(0) {
        return None;
    }
    match call.identifier.name {
        "uint8" | "uint8be" => Some((1, false)),
        "uint16" => Some((2, false)),
        "uint16be" => Some((2, true)),
        "uint32" => Some((4, false)),
        "uint32be" => Some((4, true)),
        _ => None,
    }
}

/// The bytes `uintN(0) == value` needs at the start of the data.
fn prefix_of(width: usize, big_endian: bool, value: i64) -> Vec<u8> {
    let le = value.to_le_bytes();
    let mut bytes = le[..width].to_vec();
    if big_endian {
        bytes.reverse();
    }
    bytes
}

/// Modules that fill their fields only for data of their format, with the bytes such
/// data starts with.
const FORMAT_MODULES: [(&str, &[u8]); 3] = [("pe", b"MZ"), ("dotnet", b"MZ"), ("elf", b"\x7fELF")];

/// The start of data `expr` reads a format module's field from (`pe.machine`,
/// `pe.sections[0].name`, `pe.imphash()`), if it does: not a constant (`pe.DLL`, upper
/// case), which has its value whatever the data.
fn format_read(expr: &Expr<'_>) -> Option<&'static [u8]> {
    let module = |name: &str| {
        FORMAT_MODULES
            .iter()
            .find(|(m, _)| *m == name)
            .map(|(_, start)| *start)
    };
    let constant = |name: &str| !name.bytes().any(|b| b.is_ascii_lowercase());
    match expr {
        Expr::FieldAccess(access) => {
            let last_is_constant = match access.last() {
                Expr::Ident(field) => constant(field.name),
                _ => false,
            };
            if last_is_constant {
                return None;
            }
            match access.first() {
                Expr::Ident(root) => module(root.name),
                // `pe.sections[0].name`: the root is read through a lookup.
                other => format_read(other),
            }
        }
        // Functions of `pe` give nothing for data that is not a PE file; those of other
        // modules may (`elf.import_md5()` is the hash of nothing).
        Expr::FuncCall(call) => match call.object.as_ref()? {
            Expr::Ident(root) if root.name == "pe" => module(root.name),
            _ => None,
        },
        Expr::Lookup(lookup) => format_read(&lookup.primary),
        _ => None,
    }
}

/// What `read op literal` needs when `read` reads a format module's field: a field is
/// undefined for data of another format (a comparison with it is then false), or holds
/// its type's zero value, which `== v` (v not zero, not empty), `> n` (n ≥ 0), `>= n`
/// (n ≥ 1) and `contains`, `startswith`, `endswith`, `iequals` a non-empty string all
/// refuse.
fn format_need(expr: &Expr<'_>) -> Need {
    let (read, refuses_zero) = match expr {
        Expr::Eq(b) => {
            let nonzero = |e: &Expr<'_>| match e {
                Expr::LiteralInteger(i) => i.value != 0,
                Expr::LiteralString(s) => !s.value.is_empty(),
                _ => false,
            };
            if nonzero(&b.rhs) {
                (&b.lhs, true)
            } else {
                (&b.rhs, nonzero(&b.lhs))
            }
        }
        Expr::Gt(b) => (&b.lhs, integer(&b.rhs).is_some_and(|n| n >= 0)),
        Expr::Ge(b) => (&b.lhs, integer(&b.rhs).is_some_and(|n| n >= 1)),
        // The empty string contains, starts, ends with or equals no other.
        Expr::Contains(b)
        | Expr::IContains(b)
        | Expr::StartsWith(b)
        | Expr::IStartsWith(b)
        | Expr::EndsWith(b)
        | Expr::IEndsWith(b)
        | Expr::IEquals(b) => (
            &b.lhs,
            matches!(&b.rhs, Expr::LiteralString(t) if !t.value.is_empty()),
        ),
        _ => return None,
    };
    if !refuses_zero {
        return None;
    }
    format_read(read).map(|start| vec![Atom::Prefix(start.to_vec())])
}

/// What a condition is read against: the rule's strings, and the external variables,
/// which are defined empty (the THOR/LOKI names).
struct Context<'c, 'r> {
    strings: &'c Strings<'r>,
    externals: &'c [&'c str],
}

/// The strings whose offset or length (`@a`, `!a[2]`) an operand reads: undefined
/// unless the string matched, and so is what is computed from it.
fn offsets_read(expr: &Expr<'_>, out: &mut Vec<String>) {
    match expr {
        Expr::PatternOffset(i) | Expr::PatternLength(i) => {
            if let Some(name) = i.identifier.name.get(1..).filter(|n| !n.is_empty()) {
                out.push(format!("${name}"));
            }
        }
        Expr::Add(e) | Expr::Sub(e) | Expr::Mul(e) | Expr::Div(e) | Expr::Mod(e) => {
            e.operands().for_each(|o| offsets_read(o, out));
        }
        Expr::Shl(b)
        | Expr::Shr(b)
        | Expr::BitwiseAnd(b)
        | Expr::BitwiseOr(b)
        | Expr::BitwiseXor(b) => {
            offsets_read(&b.lhs, out);
            offsets_read(&b.rhs, out);
        }
        Expr::Minus(u) | Expr::BitwiseNot(u) => offsets_read(&u.operand, out),
        Expr::FuncCall(call) => call.args.iter().for_each(|a| offsets_read(a, out)),
        _ => {}
    }
}

/// Whether `expr` is never negative: counts, `filesize`, literals and their sums.
fn never_negative(expr: &Expr<'_>) -> bool {
    match expr {
        Expr::LiteralInteger(i) => i.value >= 0,
        Expr::PatternCount(_) | Expr::Filesize { .. } => true,
        Expr::Add(e) | Expr::Mul(e) => e.operands().all(never_negative),
        _ => false,
    }
}

/// What a comparison needs: several reasons may hold at once (each must, for it to be
/// true), and the most selective is kept.
fn comparison_need(expr: &Expr<'_>, b: &ast::BinaryExpr<'_>, cx: &Context<'_, '_>) -> Need {
    let mut found: Need = None;
    // `#a > n`, `#a >= n`, `#a == n` and the mirrored forms, when they need one match.
    let count = match expr {
        Expr::Gt(_) => count_of(&b.lhs).filter(|_| never_negative(&b.rhs)),
        Expr::Lt(_) => count_of(&b.rhs).filter(|_| never_negative(&b.lhs)),
        Expr::Ge(_) | Expr::Eq(_) => count_of(&b.lhs).filter(|_| integer(&b.rhs) >= Some(1)),
        Expr::Le(_) => count_of(&b.rhs).filter(|_| integer(&b.lhs) >= Some(1)),
        _ => None,
    };
    if let Some(id) = count {
        found = either(found, cx.strings.of(&id));
    }
    if let Expr::Eq(_) = expr {
        for (read, value) in [(&b.lhs, &b.rhs), (&b.rhs, &b.lhs)] {
            if let (Some((width, be)), Some(v)) = (read_at_zero(read), integer(value)) {
                found = either(found, Some(vec![Atom::Prefix(prefix_of(width, be, v))]));
            }
        }
    }
    found = either(found, format_need(expr));
    let mut offsets = Vec::new();
    offsets_read(&b.lhs, &mut offsets);
    offsets_read(&b.rhs, &mut offsets);
    for id in offsets {
        found = either(found, cx.strings.of(&id));
    }
    // An external variable (empty) equal to, containing, starting or ending with a
    // non-empty string: never.
    let never = matches!(
        expr,
        Expr::Eq(_)
            | Expr::IEquals(_)
            | Expr::Contains(_)
            | Expr::IContains(_)
            | Expr::StartsWith(_)
            | Expr::IStartsWith(_)
            | Expr::EndsWith(_)
            | Expr::IEndsWith(_)
    ) && [(&b.lhs, &b.rhs), (&b.rhs, &b.lhs)]
        .iter()
        .any(|(var, text)| {
            matches!(var, Expr::Ident(i) if cx.externals.contains(&i.name))
                && matches!(text, Expr::LiteralString(t) if !t.value.is_empty())
        });
    // An external variable (empty) matching a regular expression that matches no
    // empty string: never.
    let never_matches = matches!(expr, Expr::Matches(_))
        && matches!(&b.lhs, Expr::Ident(i) if cx.externals.contains(&i.name))
        && matches!(&b.rhs, Expr::Regexp(r) if regex_syntax::ParserBuilder::new()
            .unicode(false)
            .utf8(false)
            .build()
            .parse(r.src)
            .is_ok_and(|hir| hir.properties().minimum_len().is_some_and(|n| n >= 1)));
    if never || never_matches {
        found = Some(Vec::new());
    }
    found
}

/// What `expr` needs for it to be true.
fn need(expr: &Expr<'_>, cx: &Context<'_, '_>) -> Need {
    match expr {
        Expr::False { .. } => Some(Vec::new()),
        Expr::PatternMatch(m) if m.identifier.name != "$" => cx.strings.of(m.identifier.name),
        Expr::And(e) => e.operands().map(|o| need(o, cx)).fold(None, either),
        Expr::Or(e) => {
            let mut operands = e.operands().map(|o| need(o, cx));
            let first = operands.next()??;
            operands.try_fold(first, |all, n| one_of(Some(all), n))
        }
        Expr::Eq(b)
        | Expr::Ne(b)
        | Expr::Lt(b)
        | Expr::Le(b)
        | Expr::Gt(b)
        | Expr::Ge(b)
        | Expr::IEquals(b)
        | Expr::Contains(b)
        | Expr::IContains(b)
        | Expr::StartsWith(b)
        | Expr::IStartsWith(b)
        | Expr::EndsWith(b)
        | Expr::IEndsWith(b)
        | Expr::Matches(b) => comparison_need(expr, b, cx),
        Expr::Of(of) => {
            let members = match &of.items {
                OfItems::PatternSet(set) => cx.strings.members(set),
                OfItems::BoolExprTuple(exprs) => exprs.iter().map(|e| need(e, cx)).collect(),
            };
            quantified(&of.quantifier, members)
        }
        Expr::With(w) => {
            // A declared name may hide a function, a module or an external variable
            // that what is told here relies on (`with uint32 = uint32be : ..`): then
            // nothing is told.
            let reserved = |name: &str| {
                name.starts_with("uint")
                    || name.starts_with("int")
                    || FORMAT_MODULES.iter().any(|(m, _)| *m == name)
                    || cx.externals.contains(&name)
            };
            if w.declarations.iter().any(|d| reserved(d.identifier.name)) {
                return None;
            }
            need(&w.body, cx)
        }
        // `pe.exports("x")`, `pe.imports("k32.dll")`: false for data that is not a PE.
        Expr::FuncCall(call)
            if matches!(call.identifier.name, "exports" | "imports")
                && matches!(call.object.as_ref(), Some(Expr::Ident(m)) if m.name == "pe") =>
        {
            Some(vec![Atom::Prefix(b"MZ".to_vec())])
        }
        // `for any i in (0..pe.number_of_signatures) : (..)`, `for any s in
        // pe.sections : (..)`: nothing to go through for data of another format.
        Expr::ForIn(f) => {
            let at_least_one = match &f.quantifier {
                Quantifier::Any { .. } => true,
                Quantifier::Expr(e) => integer(e).is_some_and(|n| n >= 1),
                _ => false,
            };
            let read = match &f.iterable {
                ast::Iterable::Range(r) => {
                    reads_format(&r.lower_bound).or_else(|| reads_format(&r.upper_bound))
                }
                ast::Iterable::Expr(e) => format_read(e),
                ast::Iterable::ExprTuple(_) => None,
            };
            read.filter(|_| at_least_one)
                .map(|start| vec![Atom::Prefix(start.to_vec())])
        }
        _ => None,
    }
}

/// The start of data an integer expression reads a format module's field from, if
/// one of its terms does (`pe.number_of_signatures - 1`): undefined for other data,
/// and so is the expression.
fn reads_format(expr: &Expr<'_>) -> Option<&'static [u8]> {
    match expr {
        Expr::Add(e) | Expr::Sub(e) | Expr::Mul(e) | Expr::Div(e) | Expr::Mod(e) => {
            e.operands().find_map(reads_format)
        }
        other => format_read(other),
    }
}

/// What `quantifier of members` needs. With `n of` (or a percentage that comes to n),
/// fewer than n members that need nothing that can be told leave one of the others
/// needed.
fn quantified(quantifier: &Quantifier<'_>, members: Vec<Need>) -> Need {
    let total = members.len() as i64;
    let at_least = match quantifier {
        Quantifier::None { .. } => 0,
        Quantifier::All { .. } => return members.into_iter().fold(None, either),
        Quantifier::Any { .. } => 1,
        Quantifier::Expr(e) => integer(e).unwrap_or(0),
        Quantifier::Percentage(e) => integer(e).map_or(0, |p| (p * total + 99) / 100),
    };
    let untold = members.iter().filter(|m| m.is_none()).count() as i64;
    if at_least < 1 || untold >= at_least {
        return None;
    }
    Some(members.into_iter().flatten().flatten().collect())
}

/// Each rule of a source that reports matches (not private), with what it needs; an
/// error names why the source cannot be read so (every value is then scanned).
pub(super) fn rule_needs(source: &str) -> Result<Vec<(String, Need)>, &'static str> {
    let tree = AST::from(source);
    if !tree.errors().is_empty() {
        return Err("(a file the prefilter could not read)");
    }
    if tree.items().any(|i| matches!(i, ast::Item::Include(_))) {
        return Err("(a file with an include)");
    }
    Ok(tree
        .rules()
        .filter(|rule| !rule.flags.contains(RuleFlags::Private))
        .map(|rule| {
            let strings = Strings {
                needs: rule
                    .patterns
                    .iter()
                    .flatten()
                    .map(|p| (p.identifier().name, pattern_need(p)))
                    .collect(),
            };
            let cx = Context {
                strings: &strings,
                externals: &super::EXTERNALS,
            };
            (rule.identifier.name.to_string(), need(&rule.condition, &cx))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the first rule of `source` needs: (prefix?, bytes), sorted.
    fn needs(source: &str) -> Option<Vec<(bool, Vec<u8>)>> {
        let (_, need) = rule_needs(source).unwrap().into_iter().next().unwrap();
        let mut out: Vec<(bool, Vec<u8>)> = need?
            .into_iter()
            .map(|a| match a {
                Atom::Prefix(b) => (true, b),
                Atom::Anywhere(b) => (false, b),
            })
            .collect();
        out.sort();
        Some(out)
    }

    fn anywhere(s: &[u8]) -> (bool, Vec<u8>) {
        (false, s.to_vec())
    }

    #[test]
    fn conditions_tell_what_they_need() {
        let strings = r#"strings: $a = "cmd.exe" $b = "Hello" wide ascii $c = { 4D 5A ?? 00 01 02 03 [2-4] 05 } $d = /ab+cdef/ $x = "ke" xor(1-2) "#;
        let rule = |condition: &str| format!("rule r {{ {strings} condition: {condition} }}");
        assert_eq!(needs(&rule("$a")), Some(vec![anywhere(b"cmd.exe")]));
        assert_eq!(
            needs(&rule("$b")),
            Some(vec![anywhere(b"H\0e\0l\0l\0o\0"), anywhere(b"Hello")])
        );
        assert_eq!(needs(&rule("$c")), Some(vec![anywhere(&[0, 1, 2, 3])]));
        assert_eq!(needs(&rule("$d")), Some(vec![anywhere(b"cdef")]));
        assert_eq!(
            needs(&rule("$x")),
            Some(vec![anywhere(b"ig"), anywhere(b"jd")])
        );
        // `and`: the more selective side; a prefix beats any string.
        assert_eq!(
            needs(&rule("uint16(0) == 0x5a4d and $a")),
            Some(vec![(true, b"MZ".to_vec())])
        );
        assert_eq!(
            needs(&rule("uint32be(0) == 0x7f454c46 and filesize < 10")),
            Some(vec![(true, b"\x7fELF".to_vec())])
        );
        assert_eq!(needs(&rule("$a and $d")), Some(vec![anywhere(b"cmd.exe")]));
        // `or`, `any of`, `n of`: one of the members.
        assert_eq!(
            needs(&rule("$a or $d")),
            Some(vec![anywhere(b"cdef"), anywhere(b"cmd.exe")])
        );
        assert_eq!(
            needs(&rule("2 of ($a, $d)")),
            Some(vec![anywhere(b"cdef"), anywhere(b"cmd.exe")])
        );
        let b64 = "rule r { strings: $a = \"cmd.exe\" $e = \"evil\" base64 condition: ";
        assert_eq!(needs(&format!("{b64} any of them }}")), None);
        assert_eq!(
            needs(&format!("{b64} all of them }}")),
            Some(vec![anywhere(b"cmd.exe")])
        );
        // Two of them, one untold: the other is needed.
        assert_eq!(
            needs(&format!("{b64} 2 of them }}")),
            Some(vec![anywhere(b"cmd.exe")])
        );
        // Offsets read, externals, counts against counts.
        assert_eq!(
            needs(&rule("uint32(@a + 4) == 0x1234")),
            Some(vec![anywhere(b"cmd.exe")])
        );
        assert_eq!(
            needs(&rule("extension == \".exe\" and not $a")),
            Some(Vec::new())
        );
        assert_eq!(needs(&rule("extension != \".exe\"")), None);
        assert_eq!(
            needs(&rule("#a > #b + #d")),
            Some(vec![anywhere(b"cmd.exe")])
        );
        assert_eq!(needs(&rule("50% of ($a, $d)")).map(|n| n.len()), Some(2));
        // Counts.
        assert_eq!(needs(&rule("#a > 2")), Some(vec![anywhere(b"cmd.exe")]));
        assert_eq!(needs(&rule("#a >= 1")), Some(vec![anywhere(b"cmd.exe")]));
        assert_eq!(needs(&rule("1 <= #a")), Some(vec![anywhere(b"cmd.exe")]));
        assert_eq!(needs(&rule("#a == 0")), None);
        assert_eq!(needs(&rule("#a >= 0")), None);
        // What cannot be told.
        assert_eq!(needs(&rule("not $a")), None);
        assert_eq!(needs(&rule("$a or filesize < 10")), None);
        assert_eq!(needs(&rule("none of them")), None);
        assert_eq!(needs(&rule("for any of ($a, $d) : ($ at 0)")), None);
        assert_eq!(needs(&rule("true")), None);
        // Format modules: a field read and compared with what a zero value is not.
        let mz = Some(vec![(true, b"MZ".to_vec())]);
        let pe = |c: &str| needs(&format!("import \"pe\" rule r {{ condition: {c} }}"));
        assert_eq!(
            pe("pe.imphash() == \"f34d5f2d4577ed6d9ceec516c1f5a744\""),
            mz
        );
        assert_eq!(pe("pe.number_of_signatures > 0"), mz);
        assert_eq!(pe("pe.sections[0].name == \".text\""), mz);
        assert_eq!(pe("pe.machine == 0x14c"), mz);
        assert_eq!(
            pe("pe.version_info[\"InternalName\"] contains \"SERVICE.EXE\""),
            mz
        );
        assert_eq!(pe("pe.dll_name istartswith \"x\""), mz);
        assert_eq!(pe("pe.exports(\"VncStartServer\")"), mz);
        assert_eq!(
            pe("filename matches /x\\.crmlog/ and math.entropy(0, 1024) >= 7.0"),
            Some(Vec::new())
        );
        assert_eq!(pe("filename matches /(x)?/"), None);
        assert_eq!(
            pe("for any i in (0..pe.number_of_signatures - 1) : (pe.signatures[i].serial == \"01\")"),
            mz
        );
        assert_eq!(pe("for any s in pe.sections : (s.name == \".x\")"), mz);
        assert_eq!(
            pe("for all i in (0..pe.number_of_sections) : (pe.sections[i].name == \".x\")"),
            None
        );
        assert_eq!(pe("pe.dll_name contains \"\""), None);
        assert_eq!(pe("pe.number_of_signatures == 0"), None);
        assert_eq!(pe("pe.number_of_signatures < 3"), None);
        assert_eq!(pe("pe.number_of_signatures >= 0"), None);
        assert_eq!(pe("pe.DLL == 0x2000"), None);
        assert_eq!(pe("pe.is_dll()"), None);
        assert_eq!(pe("pe.machine == pe.MACHINE_I386"), None);
        // Other modules' functions may give a value for any data.
        assert_eq!(
            needs("import \"elf\" rule r { condition: elf.import_md5() == \"d41d8cd98f00b204e9800998ecf8427e\" }"),
            None
        );
        // A `with` that renames a function or module: nothing is told.
        assert_eq!(
            needs("rule r { condition: with uint32 = uint32be : (uint32(0) == 0x7f454c46) }"),
            None
        );
        assert_eq!(
            needs(&rule("with n = 1 : ($a and n == 1)")),
            Some(vec![anywhere(b"cmd.exe")])
        );
        assert_eq!(needs(&rule("false")), Some(Vec::new()));
    }
}
