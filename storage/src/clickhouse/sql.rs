//! Analyst SQL on its way to ClickHouse: one read statement, nothing else, and map
//! lookups (`fields['CommandLine']`) rewritten for tables that keep maps as two arrays.

use vedette_core::CoreError;

/// Statements an analyst may run.
const READ_STATEMENTS: &[&str] = &["SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXPLAIN"];

/// One lexical piece of a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Piece {
    /// A bare word (keyword or identifier) at these byte offsets.
    Word(usize, usize),
    /// A single-quoted string literal, quotes included.
    Text(usize, usize),
    /// A double-quoted or back-quoted identifier, quotes included.
    Quoted(usize, usize),
    /// One punctuation byte.
    Punct(usize),
    /// White space or a comment.
    Blank(usize, usize),
}

/// Splits `sql` into pieces; unterminated quotes and comments are the query's fault.
fn pieces(sql: &str) -> Result<Vec<Piece>, CoreError> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let start = i;
        let c = b[i];
        if c.is_ascii_whitespace() {
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            out.push(Piece::Blank(start, i));
        } else if c == b'-' && b.get(i + 1) == Some(&b'-') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            out.push(Piece::Blank(start, i));
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let end = sql[i + 2..]
                .find("*/")
                .ok_or_else(|| CoreError::BadInput("query: unterminated /* comment".into()))?;
            i = i + 2 + end + 2;
            out.push(Piece::Blank(start, i));
        } else if c == b'\'' || c == b'"' || c == b'`' {
            i += 1;
            loop {
                match b.get(i) {
                    None => {
                        return Err(CoreError::BadInput(format!(
                            "query: unterminated {} quote",
                            c as char
                        )))
                    }
                    Some(b'\\') => i += 2,
                    Some(&q) if q == c => {
                        if b.get(i + 1) == Some(&c) {
                            i += 2;
                        } else {
                            i += 1;
                            break;
                        }
                    }
                    Some(_) => i += 1,
                }
            }
            if c == b'\'' {
                out.push(Piece::Text(start, i));
            } else {
                out.push(Piece::Quoted(start, i));
            }
        } else if c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80 {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] >= 0x80) {
                i += 1;
            }
            out.push(Piece::Word(start, i));
        } else {
            i += 1;
            out.push(Piece::Punct(start));
        }
    }
    Ok(out)
}

/// Checks that `sql` is one read statement and returns it without a trailing `;`.
pub(crate) fn read_only_statement(sql: &str) -> Result<&str, CoreError> {
    let all = pieces(sql)?;
    let mut end = sql.len();
    let mut seen_semicolon = false;
    for piece in &all {
        match *piece {
            Piece::Punct(at) if sql.as_bytes()[at] == b';' => {
                if !seen_semicolon {
                    end = at;
                }
                seen_semicolon = true;
            }
            Piece::Blank(..) => {}
            _ if seen_semicolon => {
                return Err(CoreError::BadInput(
                    "query: one statement at a time (found text after `;`)".into(),
                ))
            }
            _ => {}
        }
    }
    let first = all.iter().find_map(|p| match *p {
        Piece::Word(s, e) => Some(&sql[s..e]),
        Piece::Punct(at) if sql.as_bytes()[at] == b'(' => Some("("),
        Piece::Blank(..) => None,
        _ => Some(""),
    });
    match first {
        None => Err(CoreError::BadInput("query: empty statement".into())),
        Some("(") => Ok(sql[..end].trim()),
        Some(word) if READ_STATEMENTS.iter().any(|k| k.eq_ignore_ascii_case(word)) => {
            Ok(sql[..end].trim())
        }
        Some(word) => Err(CoreError::BadInput(format!(
            "query: only read statements are allowed ({}), not `{word}`",
            READ_STATEMENTS.join(", ")
        ))),
    }
}

/// Rewrites `col['key']` into `col.value[indexOf(col.key, 'key')]` for each map column
/// in `map_columns` (bare or qualified, e.g. `e.fields['x']`), leaving strings,
/// comments and quoted names alone.
pub(crate) fn rewrite_map_lookups(sql: &str, map_columns: &[&str]) -> Result<String, CoreError> {
    if map_columns.is_empty() {
        return Ok(sql.to_string());
    }
    let all = pieces(sql)?;
    let mut out = String::with_capacity(sql.len() + 32);
    let mut copied = 0;
    let mut i = 0;
    while i < all.len() {
        if let Some((name_start, name_end, key, next)) = map_lookup_at(sql, &all, i, map_columns) {
            let prefix_start = qualified_start(sql, &all, i).unwrap_or(name_start);
            out.push_str(&sql[copied..prefix_start]);
            let column = &sql[prefix_start..name_end];
            out.push_str(&format!("{column}.value[indexOf({column}.key, {key})]"));
            copied = match all.get(next - 1) {
                Some(Piece::Punct(at)) => at + 1,
                _ => name_end,
            };
            i = next;
        } else {
            i += 1;
        }
    }
    out.push_str(&sql[copied..]);
    Ok(out)
}

/// If piece `i` starts `name [ 'key' ]` for a map column, returns the name's span, the
/// key literal and the index of the piece after `]`.
fn map_lookup_at<'a>(
    sql: &'a str,
    all: &[Piece],
    i: usize,
    map_columns: &[&str],
) -> Option<(usize, usize, &'a str, usize)> {
    let (s, e) = match all[i] {
        Piece::Word(s, e) => (s, e),
        _ => return None,
    };
    if !map_columns
        .iter()
        .any(|c| c.eq_ignore_ascii_case(&sql[s..e]))
    {
        return None;
    }
    // Not a member of something else (`x.fields`): that is handled by its qualifier.
    let mut j = i + 1;
    let skip_blank = |j: &mut usize| {
        while matches!(all.get(*j), Some(Piece::Blank(..))) {
            *j += 1;
        }
    };
    skip_blank(&mut j);
    match all.get(j) {
        Some(Piece::Punct(at)) if sql.as_bytes()[*at] == b'[' => j += 1,
        _ => return None,
    }
    skip_blank(&mut j);
    let key = match all.get(j) {
        Some(Piece::Text(ks, ke)) => &sql[*ks..*ke],
        _ => return None,
    };
    j += 1;
    skip_blank(&mut j);
    match all.get(j) {
        Some(Piece::Punct(at)) if sql.as_bytes()[*at] == b']' => Some((s, e, key, j + 1)),
        _ => None,
    }
}

/// Where a qualified name (`alias.fields`) starts, when piece `i` follows `alias.`.
fn qualified_start(sql: &str, all: &[Piece], i: usize) -> Option<usize> {
    if i < 2 {
        return None;
    }
    match (all[i - 1], all[i - 2]) {
        (Piece::Punct(dot), Piece::Word(s, _) | Piece::Quoted(s, _))
            if sql.as_bytes()[dot] == b'.' =>
        {
            Some(s)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_statements_pass_and_lose_their_semicolon() {
        assert_eq!(read_only_statement("  select 1 ; ").unwrap(), "select 1");
        assert_eq!(
            read_only_statement("WITH x AS (SELECT 1) SELECT * FROM x").unwrap(),
            "WITH x AS (SELECT 1) SELECT * FROM x"
        );
        assert!(read_only_statement("(SELECT 1)").is_ok());
        assert!(read_only_statement("-- a note\nSELECT ';'").is_ok());
    }

    #[test]
    fn writes_and_second_statements_are_refused() {
        for sql in [
            "DROP TABLE events",
            "insert into events values (1)",
            "ALTER TABLE events DELETE WHERE 1",
            "SET readonly = 0",
            "SELECT 1; DROP TABLE events",
            "",
            "/* only a comment */",
            "SELECT 'unterminated",
        ] {
            let err = read_only_statement(sql).unwrap_err();
            assert!(matches!(err, CoreError::BadInput(_)), "{sql}: {err}");
        }
    }

    #[test]
    fn map_lookups_are_rewritten_outside_strings() {
        let sql = "SELECT fields['CommandLine'] AS c, 'fields[''x'']' FROM events e \
                   WHERE e.fields [ 'EventID' ] = '1' AND \"fields\" != ''";
        let out = rewrite_map_lookups(sql, &["fields"]).unwrap();
        assert_eq!(
            out,
            "SELECT fields.value[indexOf(fields.key, 'CommandLine')] AS c, 'fields[''x'']' FROM events e \
             WHERE e.fields.value[indexOf(e.fields.key, 'EventID')] = '1' AND \"fields\" != ''"
        );
        assert_eq!(rewrite_map_lookups(sql, &[]).unwrap(), sql);
        assert_eq!(
            rewrite_map_lookups("SELECT tags[1] FROM events", &["fields"]).unwrap(),
            "SELECT tags[1] FROM events"
        );
    }
}
