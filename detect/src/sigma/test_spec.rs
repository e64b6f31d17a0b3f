//! One Sigma value with its modifiers turned into the tests it stands for.
//!
//! A value can stand for several alternatives (`windash` permutations, the three
//! `base64offset` shifts, `expand` placeholder values); the item matches when any
//! alternative does. Each alternative is a [`TestSpec`]: a literal with an anchor, a
//! wildcard pattern, a regex, a CIDR range, a numeric comparison, or a field check.

use std::collections::HashMap;

use base64::Engine as _;
use rsigma_parser::{Modifier, SigmaString, SigmaValue};

use super::glob::GlobToken;
use super::load::one_line;
use super::value_pieces::{
    base64_offsets, expand_placeholders, flatten_literal, merge_bytes, pieces_of, utf16, windash,
    Piece, Utf16,
};

/// Where a literal must sit in the field's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Anchor {
    /// The whole value.
    Exact,
    /// At the start.
    Prefix,
    /// At the end.
    Suffix,
    /// Anywhere.
    Contains,
}

/// A numeric comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum NumOp {
    /// Equal.
    Eq,
    /// Less than.
    Lt,
    /// Less or equal.
    Lte,
    /// Greater than.
    Gt,
    /// Greater or equal.
    Gte,
}

impl NumOp {
    /// Whether `value OP bound` holds.
    pub(crate) fn holds(self, value: f64, bound: f64) -> bool {
        match self {
            Self::Eq => value == bound,
            Self::Lt => value < bound,
            Self::Lte => value <= bound,
            Self::Gt => value > bound,
            Self::Gte => value >= bound,
        }
    }
}

/// One test on one field, deduplicated across the whole rule set.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum TestSpec {
    /// A literal byte string at an anchor; ASCII case-insensitive unless `cased`.
    Literal {
        /// The bytes to find.
        bytes: Vec<u8>,
        /// Where they must be.
        anchor: Anchor,
        /// Case-sensitive.
        cased: bool,
    },
    /// A value with inner wildcards, matched over the whole value.
    Glob {
        /// The pattern; leading and trailing `*` stand for the anchors.
        tokens: Vec<GlobToken>,
        /// The longest literal piece: a value without it cannot match.
        trigger: Vec<u8>,
        /// Case-sensitive.
        cased: bool,
    },
    /// A `re` value, flags folded in.
    Regex {
        /// The regex source.
        pattern: String,
    },
    /// A `cidr` range.
    Cidr {
        /// Network address, as a 128-bit number (IPv4 mapped into the low 32 bits).
        network: u128,
        /// Prefix length.
        prefix: u8,
        /// IPv6 range.
        v6: bool,
    },
    /// A numeric comparison with the value parsed as a number.
    Num {
        /// The comparison.
        op: NumOp,
        /// The bound, as `f64::to_bits`.
        bound_bits: u64,
    },
    /// The field is present (`true`) or absent (`false`).
    Exists(bool),
    /// The field is absent or null.
    Null,
    /// The value equals (or starts with, ...) another field's value in the same event.
    FieldRef {
        /// The other field's name (before mapping).
        other: String,
        /// Where the other value must sit.
        anchor: Anchor,
        /// Case-sensitive.
        cased: bool,
    },
}

impl TestSpec {
    /// Whether this is a `contains` of a non-empty literal: a test that holds where
    /// the bytes occur, whatever surrounds them.
    pub(crate) fn is_plain_contains(&self) -> bool {
        matches!(self, TestSpec::Literal { bytes, anchor: Anchor::Contains, .. } if !bytes.is_empty())
    }
}

/// Settings that shape value expansion.
#[derive(Debug, Default, Clone)]
pub struct ExpandValues {
    /// Values of `%placeholder%` names for the `expand` modifier.
    pub placeholders: HashMap<String, Vec<String>>,
}

/// The alternatives one value stands for, or why the value cannot be used.
pub(crate) fn value_tests(
    value: &SigmaValue,
    modifiers: &[Modifier],
    expand: &ExpandValues,
) -> Result<Vec<TestSpec>, String> {
    let has = |m: Modifier| modifiers.contains(&m);
    for m in [
        Modifier::Minute,
        Modifier::Hour,
        Modifier::Day,
        Modifier::Week,
        Modifier::Month,
        Modifier::Year,
    ] {
        if has(m) {
            return Err(format!("time modifier `{m:?}` is not supported"));
        }
    }
    let cased = has(Modifier::Cased);
    let anchor = anchor_of(modifiers);
    if has(Modifier::Exists) {
        return match value {
            SigmaValue::Bool(b) => Ok(vec![TestSpec::Exists(*b)]),
            SigmaValue::String(s) if s.original.eq_ignore_ascii_case("true") => {
                Ok(vec![TestSpec::Exists(true)])
            }
            SigmaValue::String(s) if s.original.eq_ignore_ascii_case("false") => {
                Ok(vec![TestSpec::Exists(false)])
            }
            other => Err(format!("`exists` needs true or false, got `{other}`")),
        };
    }
    if let Some(op) = numeric_op(modifiers) {
        let bound = match value {
            SigmaValue::Integer(i) => *i as f64,
            SigmaValue::Float(f) => *f,
            SigmaValue::String(s) => parse_number(s.original.as_bytes())
                .ok_or_else(|| format!("`{op:?}` needs a number, got `{}`", s.original))?,
            other => return Err(format!("`{op:?}` needs a number, got `{other}`")),
        };
        return Ok(vec![TestSpec::Num {
            op,
            bound_bits: bound.to_bits(),
        }]);
    }
    if has(Modifier::FieldRef) {
        let SigmaValue::String(s) = value else {
            return Err(format!("`fieldref` needs a field name, got `{value}`"));
        };
        return Ok(vec![TestSpec::FieldRef {
            other: s.original.clone(),
            anchor,
            cased,
        }]);
    }
    if has(Modifier::Cidr) {
        let SigmaValue::String(s) = value else {
            return Err(format!("`cidr` needs a network, got `{value}`"));
        };
        return parse_cidr(&s.original).map(|t| vec![t]);
    }
    if has(Modifier::Re) {
        let SigmaValue::String(s) = value else {
            return Err(format!("`re` needs a string, got `{value}`"));
        };
        let mut flags = String::new();
        if has(Modifier::IgnoreCase) {
            flags.push('i');
        }
        if has(Modifier::Multiline) {
            flags.push('m');
        }
        if has(Modifier::DotAll) {
            flags.push('s');
        }
        let pattern = if flags.is_empty() {
            s.original.clone()
        } else {
            format!("(?{flags}){}", s.original)
        };
        regex_syntax::Parser::new()
            .parse(&pattern)
            .map_err(|e| format!("regex `{}`: {}", s.original, one_line(&e.to_string())))?;
        return Ok(vec![TestSpec::Regex { pattern }]);
    }
    match value {
        SigmaValue::Null => Ok(vec![TestSpec::Null]),
        SigmaValue::Integer(i) if anchor == Anchor::Exact && !has_encoding(modifiers) => {
            Ok(vec![TestSpec::Num {
                op: NumOp::Eq,
                bound_bits: (*i as f64).to_bits(),
            }])
        }
        SigmaValue::Float(f) if anchor == Anchor::Exact && !has_encoding(modifiers) => {
            Ok(vec![TestSpec::Num {
                op: NumOp::Eq,
                bound_bits: f.to_bits(),
            }])
        }
        SigmaValue::Integer(i) => {
            string_tests(&SigmaString::new(&i.to_string()), modifiers, expand)
        }
        SigmaValue::Float(f) => string_tests(&SigmaString::new(&f.to_string()), modifiers, expand),
        SigmaValue::Bool(b) => string_tests(&SigmaString::new(&b.to_string()), modifiers, expand),
        SigmaValue::String(s) => string_tests(s, modifiers, expand),
    }
}

fn has_encoding(modifiers: &[Modifier]) -> bool {
    modifiers.iter().any(|m| {
        matches!(
            m,
            Modifier::Base64
                | Modifier::Base64Offset
                | Modifier::Wide
                | Modifier::Utf16
                | Modifier::Utf16be
                | Modifier::WindAsh
        )
    })
}

fn anchor_of(modifiers: &[Modifier]) -> Anchor {
    if modifiers.contains(&Modifier::Contains) {
        Anchor::Contains
    } else if modifiers.contains(&Modifier::StartsWith) {
        Anchor::Prefix
    } else if modifiers.contains(&Modifier::EndsWith) {
        Anchor::Suffix
    } else {
        Anchor::Exact
    }
}

fn numeric_op(modifiers: &[Modifier]) -> Option<NumOp> {
    modifiers.iter().find_map(|m| match m {
        Modifier::Lt => Some(NumOp::Lt),
        Modifier::Lte => Some(NumOp::Lte),
        Modifier::Gt => Some(NumOp::Gt),
        Modifier::Gte => Some(NumOp::Gte),
        _ => None,
    })
}

/// A field value as a number: decimal, float or `0x` hex; surrounding blanks ignored.
pub(crate) fn parse_number(raw: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(raw).ok()?.trim();
    if text.is_empty() {
        return None;
    }
    if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        return u64::from_str_radix(hex, 16).ok().map(|v| v as f64);
    }
    if let Ok(i) = text.parse::<i64>() {
        return Some(i as f64);
    }
    let f: f64 = text.parse().ok()?;
    f.is_finite().then_some(f)
}

fn parse_cidr(text: &str) -> Result<TestSpec, String> {
    let (addr, prefix) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (text, None),
    };
    let ip: std::net::IpAddr = addr
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a CIDR range"))?;
    let (v6, bits, max) = match ip {
        std::net::IpAddr::V4(v4) => (false, u128::from(u32::from(v4)), 32u8),
        std::net::IpAddr::V6(v6) => (true, u128::from(v6), 128u8),
    };
    let prefix = match prefix {
        Some(p) => p
            .trim()
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= max)
            .ok_or_else(|| format!("`{text}` has a bad prefix length"))?,
        None => max,
    };
    Ok(TestSpec::Cidr {
        network: bits & cidr_mask(prefix, max),
        prefix,
        v6,
    })
}

/// The mask of a prefix of `prefix` bits in an address of `width` bits.
pub(crate) fn cidr_mask(prefix: u8, width: u8) -> u128 {
    if prefix == 0 {
        return 0;
    }
    let full: u128 = if width >= 128 {
        u128::MAX
    } else {
        (1u128 << width) - 1
    };
    let host = u32::from(width.saturating_sub(prefix));
    if host == 0 {
        full
    } else {
        full & !((1u128 << host) - 1)
    }
}

fn string_tests(
    value: &SigmaString,
    modifiers: &[Modifier],
    expand: &ExpandValues,
) -> Result<Vec<TestSpec>, String> {
    let has = |m: Modifier| modifiers.contains(&m);
    let cased = has(Modifier::Cased);
    let anchor = anchor_of(modifiers);
    let mut variants: Vec<Vec<Piece>> = if has(Modifier::Expand) {
        expand_placeholders(value, expand)?
    } else {
        vec![pieces_of(value)]
    };
    if has(Modifier::WindAsh) {
        variants = variants.into_iter().flat_map(windash).collect();
    }
    let encoding = if has(Modifier::Wide) {
        Some(Utf16::Le)
    } else if has(Modifier::Utf16be) {
        Some(Utf16::Be)
    } else if has(Modifier::Utf16) {
        Some(Utf16::Bom)
    } else {
        None
    };
    if let Some(enc) = encoding {
        variants = variants.into_iter().map(|v| utf16(v, enc)).collect();
    }
    if has(Modifier::Base64) || has(Modifier::Base64Offset) {
        let offsets = has(Modifier::Base64Offset);
        let mut encoded = Vec::new();
        for v in variants {
            let bytes = flatten_literal(&v);
            if offsets {
                encoded.extend(
                    base64_offsets(&bytes)
                        .into_iter()
                        .map(|b| vec![Piece::Bytes(b)]),
                );
            } else {
                let text = base64::engine::general_purpose::STANDARD.encode(&bytes);
                encoded.push(vec![Piece::Bytes(text.into_bytes())]);
            }
        }
        variants = encoded;
    }
    let mut out: Vec<TestSpec> = Vec::new();
    for v in variants {
        let spec = to_spec(v, anchor, cased);
        if !out.contains(&spec) {
            out.push(spec);
        }
    }
    Ok(out)
}

/// Builds the test for one alternative: a literal when the only wildcards are at the
/// ends, else a wildcard pattern.
fn to_spec(pieces: Vec<Piece>, anchor: Anchor, cased: bool) -> TestSpec {
    let mut pieces = merge_bytes(pieces);
    let mut lead = matches!(anchor, Anchor::Suffix | Anchor::Contains);
    let mut trail = matches!(anchor, Anchor::Prefix | Anchor::Contains);
    while pieces.first() == Some(&Piece::Star) {
        pieces.remove(0);
        lead = true;
    }
    while pieces.last() == Some(&Piece::Star) {
        pieces.pop();
        trail = true;
    }
    let literal = match pieces.as_slice() {
        [] => Some(Vec::new()),
        [Piece::Bytes(b)] => Some(b.clone()),
        _ => None,
    };
    if let Some(bytes) = literal {
        if bytes.is_empty() && (lead || trail) {
            // `*` alone: any value, including the empty one.
            return TestSpec::Glob {
                tokens: vec![GlobToken::Star],
                trigger: Vec::new(),
                cased: true,
            };
        }
        let anchor = match (lead, trail) {
            (false, false) => Anchor::Exact,
            (false, true) => Anchor::Prefix,
            (true, false) => Anchor::Suffix,
            (true, true) => Anchor::Contains,
        };
        return TestSpec::Literal {
            bytes,
            anchor,
            cased,
        };
    }
    let mut tokens = Vec::new();
    if lead {
        tokens.push(GlobToken::Star);
    }
    let mut trigger: Vec<u8> = Vec::new();
    for p in &pieces {
        match p {
            Piece::Bytes(b) => {
                tokens.extend(b.iter().map(|&byte| GlobToken::Byte(byte)));
                if b.len() > trigger.len() {
                    trigger = b.clone();
                }
            }
            Piece::Star => tokens.push(GlobToken::Star),
            Piece::One => tokens.push(GlobToken::One),
            Piece::Dash => tokens.push(GlobToken::Dash),
        }
    }
    if trail {
        tokens.push(GlobToken::Star);
    }
    TestSpec::Glob {
        tokens,
        trigger,
        cased,
    }
}
