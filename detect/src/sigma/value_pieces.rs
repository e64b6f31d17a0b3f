//! A string value as pieces (literal bytes, `*`, `?`, dashes) and the string
//! modifiers that rewrite them: placeholder expansion, `windash`, UTF-16 and base64.

use base64::Engine as _;
use rsigma_parser::{SigmaString, SpecialChar, StringPart};

use super::test_spec::ExpandValues;

/// A piece of a string value after the string modifiers.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Piece {
    Bytes(Vec<u8>),
    Star,
    One,
    Dash,
}

/// Most `windash` permutations expanded into literals; beyond, a character class.
const MAX_WINDASH_VARIANTS: usize = 125;
/// The characters `windash` makes interchangeable.
const DASHES: [char; 5] = ['-', '/', '\u{2013}', '\u{2014}', '\u{2015}'];

/// The pieces of a parsed Sigma string.
pub(crate) fn pieces_of(value: &SigmaString) -> Vec<Piece> {
    value
        .parts
        .iter()
        .map(|p| match p {
            StringPart::Plain(s) => Piece::Bytes(s.as_bytes().to_vec()),
            StringPart::Special(SpecialChar::WildcardMulti) => Piece::Star,
            StringPart::Special(SpecialChar::WildcardSingle) => Piece::One,
        })
        .collect()
}

/// Every alternative `%name%` placeholders expand to (`expand`).
pub(crate) fn expand_placeholders(
    value: &SigmaString,
    expand: &ExpandValues,
) -> Result<Vec<Vec<Piece>>, String> {
    let mut variants: Vec<Vec<Piece>> = vec![Vec::new()];
    for piece in pieces_of(value) {
        let Piece::Bytes(bytes) = &piece else {
            variants.iter_mut().for_each(|v| v.push(piece.clone()));
            continue;
        };
        let text = String::from_utf8_lossy(bytes).into_owned();
        let mut rest = text.as_str();
        let mut segments: Vec<Vec<String>> = Vec::new();
        while let Some(start) = rest.find('%') {
            let Some(len) = rest[start + 1..].find('%') else {
                break;
            };
            let name = &rest[start + 1..start + 1 + len];
            let values = expand
                .placeholders
                .get(name)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("placeholder `%{name}%` has no configured values"))?;
            segments.push(vec![rest[..start].to_owned()]);
            segments.push(values.clone());
            rest = &rest[start + len + 2..];
        }
        segments.push(vec![rest.to_owned()]);
        let mut texts = vec![String::new()];
        for seg in segments {
            texts = texts
                .iter()
                .flat_map(|t| seg.iter().map(move |s| format!("{t}{s}")))
                .collect();
        }
        variants = variants
            .iter()
            .flat_map(|v| {
                texts.iter().map(move |t| {
                    let mut next = v.clone();
                    next.extend(pieces_of(&SigmaString::new(t)));
                    next
                })
            })
            .collect();
    }
    Ok(variants)
}

/// The `windash` alternatives: literal permutations, or a dash class beyond the cap.
pub(crate) fn windash(pieces: Vec<Piece>) -> Vec<Vec<Piece>> {
    let dashes: usize = pieces
        .iter()
        .map(|p| match p {
            Piece::Bytes(b) => String::from_utf8_lossy(b)
                .chars()
                .filter(|c| DASHES.contains(c))
                .count(),
            _ => 0,
        })
        .sum();
    if dashes == 0 {
        return vec![pieces];
    }
    let expand = DASHES
        .len()
        .checked_pow(dashes as u32)
        .is_some_and(|n| n <= MAX_WINDASH_VARIANTS);
    // Split byte pieces so every dash is its own piece.
    let mut split: Vec<Piece> = Vec::new();
    for p in pieces {
        let Piece::Bytes(b) = p else {
            split.push(p);
            continue;
        };
        let mut acc = String::new();
        for c in String::from_utf8_lossy(&b).chars() {
            if DASHES.contains(&c) {
                if !acc.is_empty() {
                    split.push(Piece::Bytes(std::mem::take(&mut acc).into_bytes()));
                }
                split.push(Piece::Dash);
            } else {
                acc.push(c);
            }
        }
        if !acc.is_empty() {
            split.push(Piece::Bytes(acc.into_bytes()));
        }
    }
    if !expand {
        return vec![split];
    }
    let mut out: Vec<Vec<Piece>> = vec![Vec::new()];
    for p in split {
        if p == Piece::Dash {
            out = out
                .into_iter()
                .flat_map(|v| {
                    DASHES.iter().map(move |d| {
                        let mut next = v.clone();
                        next.push(Piece::Bytes(d.to_string().into_bytes()));
                        next
                    })
                })
                .collect();
        } else {
            out.iter_mut().for_each(|v| v.push(p.clone()));
        }
    }
    out
}

#[derive(Debug, Clone, Copy)]
/// A UTF-16 encoding (`utf16le`/`wide`, `utf16be`, `utf16` with a byte order mark).
pub(crate) enum Utf16 {
    /// Little-endian.
    Le,
    /// Big-endian.
    Be,
    /// Little-endian after a byte order mark.
    Bom,
}

/// The pieces with their literal text UTF-16 encoded.
pub(crate) fn utf16(pieces: Vec<Piece>, enc: Utf16) -> Vec<Piece> {
    let mut out = Vec::with_capacity(pieces.len() + 1);
    if matches!(enc, Utf16::Bom) {
        out.push(Piece::Bytes(vec![0xFF, 0xFE]));
    }
    for p in pieces {
        match p {
            Piece::Bytes(b) => {
                let mut bytes = Vec::with_capacity(b.len() * 2);
                for unit in String::from_utf8_lossy(&b).encode_utf16() {
                    let pair = match enc {
                        Utf16::Be => unit.to_be_bytes(),
                        Utf16::Le | Utf16::Bom => unit.to_le_bytes(),
                    };
                    bytes.extend_from_slice(&pair);
                }
                out.push(Piece::Bytes(bytes));
            }
            other => out.push(other),
        }
    }
    out
}

/// The bytes of a piece list with wildcards taken literally (for base64 input).
pub(crate) fn flatten_literal(pieces: &[Piece]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in pieces {
        match p {
            Piece::Bytes(b) => out.extend_from_slice(b),
            Piece::Star => out.push(b'*'),
            Piece::One => out.push(b'?'),
            Piece::Dash => out.push(b'-'),
        }
    }
    out
}

/// The three base64 renderings of `value` at shifts 0, 1 and 2 within a longer
/// encoded string: the characters that depend on neighbouring bytes are cut off.
pub(crate) fn base64_offsets(value: &[u8]) -> Vec<Vec<u8>> {
    const START: [usize; 3] = [0, 2, 3];
    const END: [usize; 3] = [0, 3, 2];
    let engine = &base64::engine::general_purpose::STANDARD;
    let mut out = Vec::with_capacity(3);
    for (shift, (start, end_cuts)) in START.iter().zip([END; 3]).enumerate() {
        let mut shifted = vec![b' '; shift];
        shifted.extend_from_slice(value);
        let encoded = engine.encode(&shifted).into_bytes();
        let end_cut = end_cuts[shifted.len() % 3];
        let start = *start;
        let end = encoded.len().saturating_sub(end_cut);
        if start < end {
            let piece = encoded[start..end].to_vec();
            if !out.contains(&piece) {
                out.push(piece);
            }
        }
    }
    out
}

/// Adjacent literals joined, repeated `*` collapsed.
pub(crate) fn merge_bytes(pieces: Vec<Piece>) -> Vec<Piece> {
    let mut out: Vec<Piece> = Vec::with_capacity(pieces.len());
    for p in pieces {
        match (out.last_mut(), p) {
            (Some(Piece::Bytes(prev)), Piece::Bytes(b)) => prev.extend_from_slice(&b),
            (Some(Piece::Star), Piece::Star) => {}
            (_, p) => out.push(p),
        }
    }
    out
}
