//! Sigma wildcard values (`*`, `?`, and `windash`'s dash class) matched without a
//! regex: a token walk with backtracking to the last `*`.

/// One token of a wildcard pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum GlobToken {
    /// This byte (ASCII-folded when the pattern is case-insensitive).
    Byte(u8),
    /// Any run of bytes, empty included.
    Star,
    /// Exactly one UTF-8 character.
    One,
    /// One of `-` `/` `–` `—` `―`.
    Dash,
}

/// The length of the UTF-8 character starting with `lead`.
fn char_len(lead: u8) -> usize {
    match lead {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

/// The length of the dash at the start of `text`, if there is one.
fn dash_len(text: &[u8]) -> Option<usize> {
    match text {
        [b'-' | b'/', ..] => Some(1),
        [0xE2, 0x80, 0x93..=0x95, ..] => Some(3),
        _ => None,
    }
}

/// Whether `tokens` match the whole of `text`.
pub(crate) fn glob_match(tokens: &[GlobToken], text: &[u8], cased: bool) -> bool {
    let eq = |a: u8, b: u8| {
        if cased {
            a == b
        } else {
            a.eq_ignore_ascii_case(&b)
        }
    };
    let (mut p, mut t) = (0usize, 0usize);
    // Where to resume after the last `*`: (token after it, text position).
    let mut resume: Option<(usize, usize)> = None;
    loop {
        if t == text.len() {
            return tokens[p.min(tokens.len())..]
                .iter()
                .all(|tok| *tok == GlobToken::Star);
        }
        let step = match tokens.get(p) {
            Some(GlobToken::Star) => {
                p += 1;
                resume = Some((p, t));
                continue;
            }
            Some(GlobToken::Byte(b)) if eq(*b, text[t]) => Some(1),
            Some(GlobToken::One) => Some(char_len(text[t]).min(text.len() - t)),
            Some(GlobToken::Dash) => dash_len(&text[t..]),
            _ => None,
        };
        match (step, resume) {
            (Some(n), _) => {
                p += 1;
                t += n;
            }
            (None, Some((rp, rt))) => {
                // Let the `*` take one more byte and try again.
                p = rp;
                t = rt + 1;
                resume = Some((rp, rt + 1));
            }
            (None, None) => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use GlobToken::*;

    fn toks(s: &str) -> Vec<GlobToken> {
        s.bytes()
            .map(|b| match b {
                b'*' => Star,
                b'?' => One,
                b'~' => Dash,
                b => Byte(b),
            })
            .collect()
    }

    #[test]
    fn stars_ones_and_dashes() {
        assert!(glob_match(&toks("a*c"), b"abbbc", false));
        assert!(glob_match(&toks("a*c"), b"ac", false));
        assert!(!glob_match(&toks("a*c"), b"acb", false));
        assert!(glob_match(&toks("*a*b*"), b"xxaxxbxx", false));
        assert!(glob_match(&toks("*ab"), b"aab", false));
        assert!(glob_match(&toks("a?c"), "aéc".as_bytes(), false));
        assert!(!glob_match(&toks("a?c"), b"ac", false));
        assert!(glob_match(&toks("A*C"), b"abc", false));
        assert!(!glob_match(&toks("A*C"), b"abc", true));
        assert!(glob_match(&toks("x~y"), "x\u{2014}y".as_bytes(), false));
        assert!(glob_match(&toks("x~y"), b"x/y", false));
        assert!(!glob_match(&toks("x~y"), b"x+y", false));
        assert!(glob_match(&toks("*"), b"", false));
        assert!(glob_match(&toks(""), b"", false));
        assert!(!glob_match(&toks(""), b"a", false));
        assert!(glob_match(&toks("*?"), "é".as_bytes(), false));
    }
}
