//! The flattened fields of one record, the future `fields` map: nested keys joined
//! with dots, scalar values rendered as text (numbers in their shortest form), arrays
//! as JSON text.
//!
//! A [`FieldSink`] keeps its text in one of two places: the record itself (a field the
//! JSON scanner found with no escapes is a slice of the line, never copied) or its own
//! scratch buffer (unescaped text, joined keys, values a parser computed). Fields are
//! indexed by key as they arrive, so the many lookups of the column mappings cost one
//! hash probe each, not a scan of the record. A sink is reused record after record
//! ([`FieldSink::reset`]), so a steady stream allocates nothing per record.

use serde_json::{Map, Value};

use crate::limits::Limits;

/// Renders a JSON scalar as the text kept in `fields` (None for `null`).
pub(crate) fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Array(_) | Value::Object(_) => Some(value.to_string()),
    }
}

/// Nesting depth of a JSON value (a scalar is 0).
pub(crate) fn depth(value: &Value) -> usize {
    // Iterative, so a hostile document cannot exhaust the stack here.
    let mut max = 0;
    let mut stack = vec![(value, 0usize)];
    while let Some((v, d)) = stack.pop() {
        max = max.max(d);
        match v {
            Value::Array(items) => stack.extend(items.iter().map(|i| (i, d + 1))),
            Value::Object(map) => stack.extend(map.values().map(|i| (i, d + 1))),
            _ => {}
        }
    }
    max
}

/// Where a key's or value's text lives: a byte range of the record, or of the sink's
/// scratch buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    start: usize,
    end: usize,
    in_scratch: bool,
}

/// What to do when a key arrives a second time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Repeat {
    /// Keep both fields (a lookup finds the first): repeated syslog parameters.
    KeepBoth,
    /// The new value replaces the old one in place: a JSON object's repeated member.
    Replace,
}

/// Collects the flattened fields of one record, enforcing the field-count limit.
#[derive(Debug)]
pub(crate) struct FieldSink<'a> {
    src: &'a str,
    scratch: String,
    fields: Vec<(Span, Span)>,
    /// Open addressing over `fields`: 0 is an empty slot, else the key's hash in the
    /// high 32 bits and the field index plus one in the low 32.
    index: Vec<u64>,
    /// Whether fields were dropped for the limit.
    pub(crate) truncated: bool,
    max: usize,
    /// Length of the start of the scratch buffer that outlives [`FieldSink::reset`]:
    /// keys a parser names on every record ([`FieldSink::keep_key`]).
    kept: usize,
}

/// First size of the key index; it doubles while more than half full.
const FIRST_INDEX_SLOTS: usize = 64;

impl FieldSink<'static> {
    /// An empty sink that keeps at most `limits.max_fields` fields; its text is all
    /// copied in with [`FieldSink::push`].
    pub(crate) fn new(limits: &Limits) -> Self {
        FieldSink::over("", limits)
    }
}

impl<'a> FieldSink<'a> {
    /// An empty sink whose fields may borrow from `src`, the record being read.
    pub(crate) fn over(src: &'a str, limits: &Limits) -> Self {
        Self {
            src,
            scratch: String::new(),
            fields: Vec::new(),
            index: Vec::new(),
            truncated: false,
            max: limits.max_fields,
            kept: 0,
        }
    }

    /// A key every record of this sink may use, copied once into the part of the
    /// scratch buffer that [`FieldSink::reset`] keeps, so records add it by its span
    /// ([`FieldSink::push_value`]) and do not copy it again. Call it before the first
    /// record.
    pub(crate) fn keep_key(&mut self, key: &str) -> Span {
        debug_assert_eq!(self.scratch.len(), self.kept, "keep_key after a record");
        let span = self.copy(key);
        self.kept = self.scratch.len();
        span
    }

    /// Empties the sink for the next record, `src`, keeping its buffers.
    pub(crate) fn reset(&mut self, src: &'a str) {
        self.src = src;
        self.scratch.truncate(self.kept);
        if !self.fields.is_empty() {
            self.index.fill(0);
        }
        self.fields.clear();
        self.truncated = false;
    }

    /// The text of a span.
    pub(crate) fn text(&self, span: Span) -> &str {
        let whole = if span.in_scratch {
            self.scratch.as_str()
        } else {
            self.src
        };
        whole.get(span.start..span.end).unwrap_or_default()
    }

    /// The bytes of a span, for comparing keys.
    fn bytes(&self, span: Span) -> &[u8] {
        let whole = if span.in_scratch {
            self.scratch.as_bytes()
        } else {
            self.src.as_bytes()
        };
        whole.get(span.start..span.end).unwrap_or_default()
    }

    /// The slot of `key` in the index: the one holding it, or the empty one where it
    /// would go. The index must not be empty.
    fn probe(&self, key: &[u8], hash: u64) -> (usize, Option<usize>) {
        let mask = self.index.len() - 1;
        let mut slot = hash as usize & mask;
        let tag = hash >> 32;
        loop {
            let at = self.index[slot];
            if at == 0 {
                return (slot, None);
            }
            let field = (at & 0xffff_ffff) as usize - 1;
            if at >> 32 == tag && same_key(self.bytes(self.fields[field].0), key) {
                return (slot, Some(field));
            }
            slot = (slot + 1) & mask;
        }
    }

    /// An index entry for field `field` whose key hashes to `hash`.
    fn entry(field: usize, hash: u64) -> u64 {
        (hash >> 32) << 32 | (field as u64 + 1)
    }

    /// A span of the record `src[start..end]`.
    pub(crate) fn source_span(start: usize, end: usize) -> Span {
        Span {
            start,
            end,
            in_scratch: false,
        }
    }

    /// Copies `text` into the scratch buffer.
    pub(crate) fn copy(&mut self, text: &str) -> Span {
        let start = self.scratch.len();
        self.scratch.push_str(text);
        self.scratch_span(start)
    }

    /// Appends the text of `span` to the scratch buffer (it may already be there).
    pub(crate) fn copy_span(&mut self, span: Span) {
        if span.in_scratch {
            self.scratch.extend_from_within(span.start..span.end);
        } else if let Some(t) = self.src.get(span.start..span.end) {
            self.scratch.push_str(t);
        }
    }

    /// The scratch buffer, for writing text in place; end it with
    /// [`FieldSink::scratch_span`].
    pub(crate) fn scratch(&mut self) -> &mut String {
        &mut self.scratch
    }

    /// The span of the scratch buffer from `start` to its end.
    pub(crate) fn scratch_span(&self, start: usize) -> Span {
        Span {
            start,
            end: self.scratch.len(),
            in_scratch: true,
        }
    }

    /// Adds one field unless the limit is reached; text that is not a slice of the
    /// record is copied. Keys with white
    /// space also get an alias without it (Defender's `Threat Name` is reachable as
    /// `ThreatName`). A repeated key keeps both fields.
    pub(crate) fn push(&mut self, key: impl AsRef<str>, value: impl AsRef<str>) {
        if self.fields.len() >= self.max {
            self.truncated = true;
            return;
        }
        let key = self.locate(key.as_ref());
        self.push_value(key, value.as_ref());
    }

    /// [`FieldSink::push`] with a key already in the sink (see [`FieldSink::keep_key`]).
    pub(crate) fn push_value(&mut self, key: Span, value: &str) {
        if self.fields.len() >= self.max {
            self.truncated = true;
            return;
        }
        let value = self.locate(value);
        self.add(key, value, Repeat::KeepBoth);
    }

    /// The span of `text`: in the record when it is a slice of it, else a copy.
    fn locate(&mut self, text: &str) -> Span {
        let base = self.src.as_ptr() as usize;
        let at = text.as_ptr() as usize;
        if at >= base && at + text.len() <= base + self.src.len() && !text.is_empty() {
            Self::source_span(at - base, at - base + text.len())
        } else {
            self.copy(text)
        }
    }

    /// Adds one field whose text is already in the record or the scratch buffer.
    pub(crate) fn add(&mut self, key: Span, value: Span, repeat: Repeat) {
        if self.fields.len() >= self.max {
            self.truncated = true;
            return;
        }
        let key_text = self.text(key);
        if may_hold_space(key_text.as_bytes()) && key_text.contains(char::is_whitespace) {
            let start = self.scratch.len();
            let alias: String = key_text.chars().filter(|c| !c.is_whitespace()).collect();
            if !alias.is_empty() && self.fields.len() + 1 < self.max {
                self.scratch.push_str(&alias);
                let alias = self.scratch_span(start);
                self.insert(alias, value, repeat);
            }
        }
        self.insert(key, value, repeat);
    }

    fn insert(&mut self, key: Span, value: Span, repeat: Repeat) {
        if (self.fields.len() + 1) * 2 > self.index.len() {
            self.grow();
        }
        let hash = key_hash(self.bytes(key));
        match self.probe(self.bytes(key), hash) {
            (_, Some(existing)) if repeat == Repeat::Replace => {
                self.fields[existing].1 = value;
                return;
            }
            (_, Some(_)) => {}
            (slot, None) => self.index[slot] = Self::entry(self.fields.len(), hash),
        }
        self.fields.push((key, value));
    }

    /// Doubles the key index and re-inserts every field's first occurrence.
    fn grow(&mut self) {
        let slots = (self.index.len() * 2).max(FIRST_INDEX_SLOTS);
        self.index.clear();
        self.index.resize(slots, 0);
        for field in 0..self.fields.len() {
            let key = self.bytes(self.fields[field].0);
            let hash = key_hash(key);
            if let (slot, None) = self.probe(key, hash) {
                self.index[slot] = Self::entry(field, hash);
            }
        }
    }

    /// Value of a field already collected, by exact key (the first, when repeated).
    #[inline]
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.value_span(key).map(|v| self.text(v))
    }

    #[inline]
    fn value_span(&self, key: &str) -> Option<Span> {
        if self.index.is_empty() {
            return None;
        }
        let key = key.as_bytes();
        let (_, field) = self.probe(key, key_hash(key));
        field.map(|f| self.fields[f].1)
    }

    /// Adds field `alias` with the value of field `original`, if there is one.
    pub(crate) fn alias(&mut self, alias: &str, original: &str) {
        if let Some(value) = self.value_span(original) {
            let key = self.copy(alias);
            self.add(key, value, Repeat::KeepBoth);
        }
    }

    /// Every field in record order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.fields
            .iter()
            .map(|(k, v)| (self.text(*k), self.text(*v)))
    }

    /// How many fields there are.
    pub(crate) fn len(&self) -> usize {
        self.fields.len()
    }

    /// The fields as owned pairs.
    #[cfg(test)]
    pub(crate) fn to_owned_fields(&self) -> Vec<(String, String)> {
        self.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Adds a JSON value under `key`: objects are flattened with dots, arrays and
    /// scalars are rendered as text, nulls are skipped.
    pub(crate) fn push_json(&mut self, key: &str, value: &Value) {
        match value {
            Value::Object(map) => self.push_object(key, map),
            Value::Null => {}
            Value::String(s) => self.push(key, s),
            other => {
                if let Some(text) = scalar_text(other) {
                    self.push(key, text);
                }
            }
        }
    }

    /// Flattens every member of an object, prefixing keys with `prefix.` when the
    /// prefix is not empty.
    pub(crate) fn push_object(&mut self, prefix: &str, map: &Map<String, Value>) {
        for (k, v) in map {
            if prefix.is_empty() {
                self.push_json(k, v);
            } else {
                self.push_json(&format!("{prefix}.{k}"), v);
            }
        }
    }
}

/// A fast hash of a field key (keys are short; this is not for hostile collisions:
/// a record's keys are bounded by the field limit, and a probe sequence by the index).
#[inline(always)]
fn key_hash(key: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mix = |h: u64, word: u64| (h ^ word).wrapping_mul(K).rotate_left(26);
    let mut h = (key.len() as u64).wrapping_mul(K);
    let mut chunks = key.chunks_exact(8);
    for c in &mut chunks {
        h = mix(h, word_at(c, 0));
    }
    // The tail in fixed-size loads (a copy of a variable length is a call to memmove):
    // the key's last eight bytes when it has eight, else two overlapping halves, else
    // its first, middle and last byte.
    let n = chunks.remainder().len();
    if n > 0 {
        let tail = if key.len() >= 8 {
            word_at(key, key.len() - 8)
        } else if n >= 4 {
            u64::from(half_at(key, 0)) | u64::from(half_at(key, n - 4)) << 32
        } else {
            u64::from(key[0]) | u64::from(key[n / 2]) << 8 | u64::from(key[n - 1]) << 16
        };
        h = mix(h, tail);
    }
    h ^ (h >> 29)
}

/// Whether `key` may hold white space: a byte of ASCII white space or control, or of
/// a multi-byte character (Unicode has spaces of its own). Checked a word at a time:
/// every key is checked, and few have any.
#[inline(always)]
fn may_hold_space(key: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // The top bit of a byte below 0x21 (the subtraction borrows into it) or of 0x80 and
    // above; a borrow can only set a byte's bit above a byte already below 0x21.
    let flagged = |w: u64| (w.wrapping_sub(ONES * 0x21) | w) & HIGH != 0;
    let mut words = key.chunks_exact(8);
    for c in &mut words {
        if flagged(word_at(c, 0)) {
            return true;
        }
    }
    words
        .remainder()
        .iter()
        .any(|&b| b <= b' ' || b >= 0x80)
}

/// Whether two keys are equal, compared a word at a time from both ends (most keys
/// are short: a call to compare memory would cost more than the comparison).
#[inline(always)]
fn same_key(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        false
    } else if n >= 8 {
        word_at(a, 0) == word_at(b, 0)
            && word_at(a, n - 8) == word_at(b, n - 8)
            && (n <= 16 || a[8..n - 8] == b[8..n - 8])
    } else if n >= 4 {
        half_at(a, 0) == half_at(b, 0) && half_at(a, n - 4) == half_at(b, n - 4)
    } else {
        a == b
    }
}

/// The eight bytes of `bytes` at `at` (which must be in bounds) as a little-endian word.
#[inline(always)]
fn word_at(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

/// The four bytes of `bytes` at `at` (which must be in bounds) as a little-endian word.
#[inline(always)]
fn half_at(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_compare_equal_only_when_equal_at_every_length() {
        for n in 0..40usize {
            let a: Vec<u8> = (0..n).map(|i| b'a' + (i % 26) as u8).collect();
            assert!(same_key(&a, &a.clone()));
            for at in 0..n {
                let mut b = a.clone();
                b[at] = b'_';
                assert!(!same_key(&a, &b), "{n} {at}");
            }
            assert!(!same_key(&a, &a[..n.saturating_sub(1)]) || n == 0);
        }
    }

    #[test]
    fn nested_objects_flatten_with_dots_and_scalars_render() {
        let v =
            json!({"a": {"b": 1, "c": {"d": "x"}}, "n": null, "f": 0.5, "t": true, "l": [1, "y"]});
        let mut sink = FieldSink::new(&Limits::default());
        if let Value::Object(map) = &v {
            sink.push_object("", map);
        }
        assert_eq!(sink.get("a.b"), Some("1"));
        assert_eq!(sink.get("a.c.d"), Some("x"));
        assert_eq!(sink.get("n"), None);
        assert_eq!(sink.get("f"), Some("0.5"));
        assert_eq!(sink.get("t"), Some("true"));
        assert_eq!(sink.get("l"), Some("[1,\"y\"]"));
    }

    #[test]
    fn keys_that_may_hold_space_are_told_at_any_offset() {
        for n in 0..40usize {
            let plain: Vec<u8> = (0..n).map(|i| b'!' + (i % 90) as u8).collect();
            assert!(!may_hold_space(&plain), "{n}");
            for at in 0..n {
                for odd in [b' ', b'\t', b'\n', 0u8, 0x80, 0xe2, 0xff] {
                    let mut key = plain.clone();
                    key[at] = odd;
                    assert!(may_hold_space(&key), "{n} {at} {odd}");
                }
            }
        }
    }

    #[test]
    fn white_space_keys_get_an_alias() {
        let mut sink = FieldSink::new(&Limits::default());
        sink.push("Threat Name", "EICAR");
        assert_eq!(sink.get("ThreatName"), Some("EICAR"));
        assert_eq!(sink.get("Threat Name"), Some("EICAR"));
        let keys: Vec<_> = sink.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, vec!["ThreatName", "Threat Name"]);
    }

    #[test]
    fn field_limit_truncates_and_says_so() {
        let limits = Limits {
            max_fields: 2,
            ..Limits::default()
        };
        let mut sink = FieldSink::new(&limits);
        for i in 0..5 {
            sink.push(format!("k{i}"), "v");
        }
        assert_eq!(sink.len(), 2);
        assert!(sink.truncated);
    }

    #[test]
    fn many_keys_stay_findable_and_repeats_follow_the_rule() {
        let mut sink = FieldSink::new(&Limits::default());
        for i in 0..500 {
            sink.push(format!("key{i}"), format!("v{i}"));
        }
        sink.push("key7", "again");
        assert_eq!(sink.len(), 501);
        assert!((0..500).all(|i| sink.get(&format!("key{i}")) == Some(format!("v{i}").as_str())));
        assert_eq!(sink.get("key500"), None);

        let src = r#"{"a":"1","a":"2"}"#;
        let mut json = FieldSink::over(src, &Limits::default());
        let key = FieldSink::source_span(2, 3);
        json.add(key, FieldSink::source_span(6, 7), Repeat::Replace);
        json.add(key, FieldSink::source_span(14, 15), Repeat::Replace);
        assert_eq!(json.iter().collect::<Vec<_>>(), vec![("a", "2")]);
        json.reset("{}");
        assert_eq!((json.len(), json.get("a")), (0, None));
    }

    #[test]
    fn depth_counts_nesting() {
        assert_eq!(depth(&json!(1)), 0);
        assert_eq!(depth(&json!({"a": [{"b": 1}]})), 3);
    }
}
