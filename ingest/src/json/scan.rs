//! A flattening JSON scanner for the common case: one object per line, read straight
//! into a [`FieldSink`] without building a tree.
//!
//! Strings without escapes stay slices of the line; escaped strings and nested keys
//! (`a.b.c`) are written to the sink's scratch buffer. Integers of up to 18 digits keep
//! their text; other numbers and arrays are rendered by `serde_json`, so the text is
//! the same as the tree-building path gives. Anything unusual (invalid JSON, a lone
//! surrogate, a control character in a string, nesting past the limit) makes the scan
//! give up with `None`, and the caller parses the record the slow way, which yields
//! the exact result or error message it always did.

use serde_json::Value;

use crate::flatten::{FieldSink, Repeat, Span};

/// Top-level keys that family recognition asks about, as bits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TopKeys(u64);

/// The bit of a top-level key that family recognition asks about.
fn known_bit(key: &str) -> Option<u32> {
    Some(match key {
        "eventSource" => 0,
        "eventName" => 1,
        "Records" => 2,
        "eventType" => 3,
        "actor" => 4,
        "legacyEventType" => 5,
        "displayMessage" => 6,
        "protoPayload" => 7,
        "protopayload" => 8,
        "logName" => 9,
        "logname" => 10,
        "insertId" => 11,
        "insertid" => 12,
        "operationName" => 13,
        "resourceId" => 14,
        "callerIpAddress" => 15,
        "category" => 16,
        "auditID" => 17,
        "objectRef" => 18,
        "verb" => 19,
        "requestURI" => 20,
        "event_type" => 21,
        "flow_id" => 22,
        "src_ip" => 23,
        "in_iface" => 24,
        "stats" => 25,
        "_path" => 26,
        "@stream" => 27,
        "uid" => 28,
        "id.orig_h" => 29,
        "id_orig_h" => 30,
        "event_simpleName" => 31,
        "aid" => 32,
        "cid" => 33,
        "srcaddr" => 34,
        "srcAddr" => 35,
        "dstaddr" => 36,
        "dstAddr" => 37,
        "interface-id" => 38,
        "EventID" => 39,
        "Channel" => 40,
        "SourceName" => 41,
        "Provider_Name" => 42,
        "SyslogMessage" => 43,
        _ => return None,
    })
}

/// Bits past the known keys: containers the fast path leaves to the tree-building one.
const EVENT_OBJECT: u64 = 1 << 60;
const WINLOG_OBJECT: u64 = 1 << 61;
const RECORDS_ARRAY: u64 = 1 << 62;

impl TopKeys {
    /// Whether the record has this top-level key (one of those [`known_bit`] knows).
    pub(crate) fn has(self, key: &str) -> bool {
        known_bit(key).is_some_and(|i| self.0 & (1 << i) != 0)
    }

    /// Whether the record holds a form only the tree-building path reads: a nested
    /// `Event` object (evtx_dump), a `winlog` object (Winlogbeat) or a `Records` array
    /// (a CloudTrail file).
    pub(crate) fn needs_tree(self) -> bool {
        self.0 & (EVENT_OBJECT | WINLOG_OBJECT | RECORDS_ARRAY) != 0
    }

    fn note(&mut self, key: &str) {
        if let Some(i) = known_bit(key) {
            self.0 |= 1 << i;
        }
    }
}

/// Scans one record, `src`, into `sink` (which must have been reset to `src`).
/// Returns the top-level keys, or None when the record needs the slow path.
pub(crate) fn scan_record<'a>(
    src: &'a str,
    sink: &mut FieldSink<'a>,
    max_depth: usize,
) -> Option<TopKeys> {
    let mut s = Scanner {
        src,
        b: src.as_bytes(),
        pos: 0,
        max_depth,
    };
    s.ws();
    if s.next()? != b'{' {
        return None;
    }
    let mut top = TopKeys::default();
    s.object(sink, None, 0, Some(&mut top))?;
    s.ws();
    (s.pos == s.b.len()).then_some(top)
}

/// Strings longer than this are searched for their end by `memchr` after the first
/// words.
const LONG_RUN: usize = 32;

/// The first control character of `bytes`, which JSON strings may not hold (searched
/// with no early exit per byte, so the common case of none is vectorized).
fn find_control(bytes: &[u8]) -> Option<usize> {
    if bytes.iter().fold(false, |seen, &c| seen | (c < 0x20)) {
        bytes.iter().position(|&c| c < 0x20)
    } else {
        None
    }
}

/// The byte each one-character escape stands for (`\n` is `n`'s entry), 0 where the
/// character after a backslash is not an escape (`u` is read apart).
const UNESCAPED: [u8; 256] = {
    let mut table = [0u8; 256];
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table[b'/' as usize] = b'/';
    table[b'b' as usize] = 0x08;
    table[b'f' as usize] = 0x0c;
    table[b'n' as usize] = b'\n';
    table[b'r' as usize] = b'\r';
    table[b't' as usize] = b'\t';
    table
};

/// The top bit of each byte of the little-endian word `w` that is a quote, a backslash
/// or a control character, and maybe of bytes above such a one: only a byte above a
/// real match can be a false match, so the lowest bit set is a real one.
fn special_bytes(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    // `w - 0x20..` borrows into the top bit of a byte below 0x20; `!w` rules out bytes of
    // 0x80 and above.
    zero_byte(w ^ (ONES * u64::from(b'"')))
        | zero_byte(w ^ (ONES * u64::from(b'\\')))
        | (w.wrapping_sub(ONES * 0x20) & !w & HIGH)
}

/// Whether `c` ends a plain run of a string: a quote, a backslash or a control
/// character ([`special_bytes`] a byte at a time).
fn is_special(c: u8) -> bool {
    c == b'"' || c == b'\\' || c < 0x20
}

struct Scanner<'a> {
    src: &'a str,
    b: &'a [u8],
    pos: usize,
    max_depth: usize,
}

impl Scanner<'_> {
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.pos) {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    /// The members of an object whose `{` was just read; its members are at
    /// `level + 1`.
    fn object(
        &mut self,
        sink: &mut FieldSink<'_>,
        prefix: Option<Span>,
        level: usize,
        mut top: Option<&mut TopKeys>,
    ) -> Option<()> {
        let level = level + 1;
        if level > self.max_depth {
            return None;
        }
        self.ws();
        if self.peek()? == b'}' {
            self.pos += 1;
            return Some(());
        }
        loop {
            self.ws();
            if self.next()? != b'"' {
                return None;
            }
            let key = self.string(sink)?;
            self.ws();
            if self.next()? != b':' {
                return None;
            }
            self.ws();
            let full = match prefix {
                None => key,
                Some(p) => {
                    let start = sink.scratch().len();
                    sink.copy_span(p);
                    sink.scratch().push('.');
                    sink.copy_span(key);
                    sink.scratch_span(start)
                }
            };
            let c = self.peek()?;
            if let Some(top) = top.as_deref_mut() {
                let name = sink.text(key);
                top.note(name);
                match (c, name) {
                    (b'{', "Event") => top.0 |= EVENT_OBJECT,
                    (b'{', "winlog") => top.0 |= WINLOG_OBJECT,
                    (b'[', "Records") => top.0 |= RECORDS_ARRAY,
                    _ => {}
                }
            }
            match c {
                b'"' => {
                    self.pos += 1;
                    let value = self.string(sink)?;
                    sink.add(full, value, Repeat::Replace);
                }
                b'{' => {
                    self.pos += 1;
                    self.object(sink, Some(full), level, None)?;
                }
                b'[' => {
                    let start = self.pos;
                    self.skip_array(level)?;
                    let raw = self.src.get(start..self.pos)?;
                    let value = if raw == "[]" {
                        FieldSink::source_span(start, self.pos)
                    } else {
                        let tree: Value = serde_json::from_str(raw).ok()?;
                        sink.copy(&tree.to_string())
                    };
                    sink.add(full, value, Repeat::Replace);
                }
                b't' | b'f' | b'n' => {
                    let word: &[u8] = match c {
                        b't' => b"true",
                        b'f' => b"false",
                        _ => b"null",
                    };
                    let end = self.pos + word.len();
                    if self.b.get(self.pos..end)? != word {
                        return None;
                    }
                    if c != b'n' {
                        sink.add(full, FieldSink::source_span(self.pos, end), Repeat::Replace);
                    }
                    self.pos = end;
                }
                b'-' | b'0'..=b'9' => {
                    let value = self.number(sink)?;
                    sink.add(full, value, Repeat::Replace);
                }
                _ => return None,
            }
            self.ws();
            match self.next()? {
                b',' => continue,
                b'}' => return Some(()),
                _ => return None,
            }
        }
    }

    /// A string whose opening quote was just read: a slice of the record when it has
    /// no escapes, else its unescaped text in the scratch buffer.
    fn string(&mut self, sink: &mut FieldSink<'_>) -> Option<Span> {
        let start = self.pos;
        let at = self.plain_run(start)?;
        match self.b.get(at)? {
            b'"' => {
                self.pos = at + 1;
                Some(FieldSink::source_span(start, at))
            }
            b'\\' => {
                // Unescaped straight into the sink's scratch text.
                let scratch = sink.scratch();
                let begin = scratch.len();
                scratch.push_str(self.src.get(start..at)?);
                self.pos = at;
                self.unescape_into(scratch)?;
                Some(sink.scratch_span(begin))
            }
            _ => None,
        }
    }

    /// The position of the first quote, backslash or control character at or after
    /// `from`. Keys and most values are short: they are read a word at a time here, with
    /// no call; past [`LONG_RUN`] bytes the rest is searched by `memchr`'s vector code.
    #[inline(always)]
    fn plain_run(&self, from: usize) -> Option<usize> {
        let mut at = from;
        while let Some(word) = self
            .b
            .get(at..at + 8)
            .and_then(|w| <[u8; 8]>::try_from(w).ok())
        {
            let special = special_bytes(u64::from_le_bytes(word));
            if special != 0 {
                return Some(at + special.trailing_zeros() as usize / 8);
            }
            at += 8;
            if at - from >= LONG_RUN {
                let rest = self.b.get(at..)?;
                let end = memchr::memchr2(b'"', b'\\', rest).unwrap_or(rest.len());
                return match rest.get(..end).and_then(find_control) {
                    Some(c) => Some(at + c),
                    None => (end < rest.len()).then_some(at + end),
                };
            }
        }
        let rest = self.b.get(at..)?;
        rest.iter().position(|&c| is_special(c)).map(|i| at + i)
    }

    /// The rest of a string from the backslash at the position to its closing quote
    /// (read too), unescaped onto `out`. Escaped text (Windows paths, messages) has short
    /// runs between escapes: each run is copied eight bytes at a time, a whole word
    /// written and the bytes past its end taken back, so no run costs a call to copy.
    fn unescape_into(&mut self, out: &mut String) -> Option<()> {
        loop {
            // At a backslash.
            self.pos += 1;
            // A table, not a `match`: the escapes of a message alternate (`\r\n\t`), and
            // a jump table's indirect branch mispredicts on them.
            match self.next()? {
                b'u' => out.push(self.unicode_escape()?),
                other => match UNESCAPED[usize::from(other)] {
                    0 => return None,
                    // Every one-character escape stands for an ASCII character.
                    byte => out.push(char::from(byte)),
                },
            }
            loop {
                // Eight bytes that begin and end on character boundaries (most runs are
                // ASCII); else, near the end or a multi-byte character, the run is found
                // byte by byte.
                let Some(word) = self.src.get(self.pos..self.pos + 8) else {
                    let end = self.plain_run(self.pos)?;
                    out.push_str(self.src.get(self.pos..end)?);
                    self.pos = end;
                    break;
                };
                let bytes = <[u8; 8]>::try_from(word.as_bytes()).ok()?;
                out.push_str(word);
                let special = special_bytes(u64::from_le_bytes(bytes));
                if special != 0 {
                    // The special byte is ASCII, so a character boundary.
                    let n = special.trailing_zeros() as usize / 8;
                    out.truncate(out.len() - 8 + n);
                    self.pos += n;
                    break;
                }
                self.pos += 8;
            }
            match self.peek()? {
                b'"' => {
                    self.pos += 1;
                    return Some(());
                }
                b'\\' => {}
                _ => return None,
            }
        }
    }

    /// The character of a `\uXXXX` escape whose `\u` was just read (a surrogate pair
    /// takes the next escape too).
    fn unicode_escape(&mut self) -> Option<char> {
        let high = self.hex4()?;
        let code = match high {
            0xD800..=0xDBFF => {
                if self.next()? != b'\\' || self.next()? != b'u' {
                    return None;
                }
                let low = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&low) {
                    return None;
                }
                0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
            }
            0xDC00..=0xDFFF => return None,
            other => other,
        };
        char::from_u32(code)
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.b.get(self.pos..self.pos + 4)?;
        let mut v = 0u32;
        for &d in digits {
            v = v * 16 + char::from(d).to_digit(16)?;
        }
        self.pos += 4;
        Some(v)
    }

    /// A number: its own text when it is an integer of up to 18 digits, else the text
    /// `serde_json` renders for it.
    fn number(&mut self, sink: &mut FieldSink<'_>) -> Option<Span> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.next()? {
            b'0' => {}
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        let int_end = self.pos;
        let mut plain = true;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if !self.peek()?.is_ascii_digit() {
                return None;
            }
            self.digits();
            plain = false;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if !self.peek()?.is_ascii_digit() {
                return None;
            }
            self.digits();
            plain = false;
        }
        let negative_zero = self.b.get(start..start + 2) == Some(b"-0");
        if plain && int_end - start <= 18 && !negative_zero {
            return Some(FieldSink::source_span(start, self.pos));
        }
        let number: serde_json::Number =
            serde_json::from_str(self.src.get(start..self.pos)?).ok()?;
        Some(sink.copy(&number.to_string()))
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
    }

    /// Skips an array (at `level`) whose `[` is at the position, strings and nesting
    /// included, giving up past the depth limit.
    fn skip_array(&mut self, level: usize) -> Option<()> {
        let mut open = 0usize;
        loop {
            let c = self.next()?;
            match c {
                b'[' | b'{' => {
                    open += 1;
                    if level + open > self.max_depth {
                        return None;
                    }
                }
                b']' | b'}' => {
                    open = open.checked_sub(1)?;
                    if open == 0 {
                        return Some(());
                    }
                }
                b'"' => loop {
                    let i = memchr::memchr2(b'"', b'\\', self.b.get(self.pos..)?)?;
                    self.pos += i + 1;
                    if self.b.get(self.pos - 1) == Some(&b'"') {
                        break;
                    }
                    self.pos += 1;
                },
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::Limits;

    fn scan(text: &str) -> Option<(Vec<(String, String)>, TopKeys)> {
        let mut sink = FieldSink::over(text, &Limits::default());
        let top = scan_record(text, &mut sink, 32)?;
        Some((sink.to_owned_fields(), top))
    }

    /// What the tree-building path makes of the same record.
    fn tree(text: &str) -> Vec<(String, String)> {
        let mut sink = FieldSink::new(&Limits::default());
        if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(text) {
            sink.push_object("", &map);
        }
        sink.to_owned_fields()
    }

    #[test]
    fn fields_are_those_of_the_tree_path() {
        for text in [
            r#"{"a":"x","b":{"c":1,"d":{"e":"y\"z"}},"n":null,"t":true,"f":false}"#,
            r#" { "k\u00e9y" : "caf\u00e9 \ud83d\ude00\\n" , "arr" : [1, "two", {"x": 3.50}], "e": [] } "#,
            r#"{"big":123456789012345678901,"neg":-12,"zero":0,"nz":-0,"f":1.0e3,"g":2E-2}"#,
            r#"{"Threat Name":"EICAR","path":"C:\\Windows\\System32\\cmd.exe","empty":{}}"#,
        ] {
            let (fields, _) = scan(text).unwrap_or_else(|| panic!("fast path gave up: {text}"));
            assert_eq!(fields, tree(text), "{text}");
        }
    }

    /// Where the scanner's plain run from the start of `bytes` ends.
    fn find_special(bytes: &[u8]) -> Option<usize> {
        let scanner = Scanner {
            src: "",
            b: bytes,
            pos: 0,
            max_depth: 32,
        };
        scanner.plain_run(0)
    }

    #[test]
    fn special_bytes_are_found_at_any_offset() {
        // Past `LONG_RUN` bytes the search is `memchr`'s: lengths cover both.
        for len in 0..(LONG_RUN + 24) {
            for at in 0..len {
                for special in [b'"', b'\\', b'\n', 0u8, 0x1f] {
                    let mut bytes = vec![b'a'; len];
                    bytes[at] = special;
                    if at + 1 < len {
                        bytes[at + 1] = b'"';
                    }
                    assert_eq!(find_special(&bytes), Some(at), "{len} {at} {special}");
                }
            }
            let plain: Vec<u8> = (0..len)
                .map(|i| 0x20 + (i as u8 % 0x5f))
                .filter(|&c| c != b'"' && c != b'\\')
                .collect();
            assert_eq!(find_special(&plain), None);
            assert_eq!(find_special(&vec![0xe2; len]), None);
        }
    }

    #[test]
    fn escaped_strings_of_every_run_length_read_as_the_tree_path_reads_them() {
        let pieces = [
            r"\\",
            r"\n",
            r"\r\n",
            r"\t",
            r#"\""#,
            r"\/",
            r"\u00e9",
            r"\ud83d\ude00",
            "é",
            "€",
        ];
        for run in 0..20 {
            for piece in pieces {
                for tail in 0..10 {
                    let text = format!(
                        r#"{{"k":"{a}{piece}{b}{piece}{c}","n":1}}"#,
                        a = "a".repeat(run),
                        b = "b".repeat(run / 2 + tail),
                        c = "c".repeat(tail)
                    );
                    let (fields, _) =
                        scan(&text).unwrap_or_else(|| panic!("fast path gave up: {text}"));
                    assert_eq!(fields, tree(&text), "{text}");
                }
            }
        }
        // Strings that end within the last word of the line, and escapes among
        // multi-byte characters.
        for text in [
            r#"{"k":"a\nb"}"#,
            r#"{"k":"\t"}"#,
            r#"{"k":"é\n€"}"#,
            r#"{"k":"\"é\"","l":"x\\"}"#,
            r#"{"k":"\u00e9\u00e9\u00e9\u00e9\u00e9"}"#,
        ] {
            let (fields, _) = scan(text).unwrap_or_else(|| panic!("fast path gave up: {text}"));
            assert_eq!(fields, tree(text), "{text}");
        }
        for bad in [
            "{\"k\":\"a\\nb\u{1f}\"}",
            "{\"k\":\"\\t\u{7}x\"}",
            r#"{"k":"a\qb"}"#,
            "{\"k\":\"a\\\\b\u{1}cdefghij\"}",
            r#"{"k":"a\nb"#,
        ] {
            assert!(scan(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn plain_strings_of_every_length_end_at_their_quote_and_refuse_control_characters() {
        for len in 0..100 {
            let value = "v".repeat(len);
            let text = format!(r#"{{"k":"{value}","l":"x"}}"#);
            let (fields, _) = scan(&text).unwrap_or_else(|| panic!("fast path gave up: {text}"));
            assert_eq!(fields, tree(&text), "{text}");
            for at in 0..len {
                let mut bad = value.clone().into_bytes();
                bad[at] = 0x1f;
                let bad = format!(
                    r#"{{"k":"{}","l":"x"}}"#,
                    String::from_utf8(bad).unwrap_or_default()
                );
                assert!(scan(&bad).is_none(), "{len} {at}");
            }
        }
    }

    #[test]
    fn a_repeated_member_keeps_its_last_value() {
        let (fields, _) = scan(r#"{"a":"1","b":"2","a":"3"}"#).unwrap_or_default();
        assert_eq!(fields, tree(r#"{"a":"1","b":"2","a":"3"}"#));
        assert_eq!(fields[0], ("a".to_string(), "3".to_string()));
    }

    #[test]
    fn unusual_records_go_to_the_slow_path() {
        for text in [
            "",
            "[1]",
            "{",
            r#"{"a":1} x"#,
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":"\ud800"}"#,
            "{\"a\":\"tab\there\"}",
            r#"{"a":"\q"}"#,
            r#"{"a":tru}"#,
            r#"{"a" 1}"#,
            r#"{"a":1,}"#,
            r#"{"a":[1,2}"#,
        ] {
            assert!(scan(text).is_none(), "{text}");
        }
        let deep = format!("{}1{}", r#"{"a":"#.repeat(40), "}".repeat(40));
        assert!(scan(&deep).is_none());
        let deep_array = format!(r#"{{"a":{}1{}}}"#, "[".repeat(40), "]".repeat(40));
        assert!(scan(&deep_array).is_none());
    }

    #[test]
    fn top_level_keys_are_noted() {
        let (_, top) =
            scan(r#"{"eventSource":"s3","x":{"eventName":"n"},"Records":[]}"#).unwrap_or_default();
        assert!(top.has("eventSource"));
        assert!(!top.has("eventName"));
        assert!(top.needs_tree());
        let (_, top) = scan(r#"{"Event":"text","winlog":1}"#).unwrap_or_default();
        assert!(!top.needs_tree());
    }
}
