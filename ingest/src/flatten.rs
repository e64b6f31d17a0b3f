//! The flattened fields of one record, the future `fields` map: nested keys joined
//! with dots, scalar values rendered as text (numbers in their shortest form), arrays
//! as JSON text.
//!
//! A [`FieldSink`] keeps its text in one of two places: the record itself (a field the
//! JSON scanner found with no escapes is a slice of the line, never copied) or its own
//! scratch buffer (unescaped text, joined keys, values a parser computed). Fields are
//! indexed by key when lookups need it (a JSON member that may repeat, or more than a
//! few fields added since), so the many lookups of the column mappings cost one hash
//! probe each, not a scan of the record, and a record nobody looks into hashes nothing.
//! A sink is reused record after record ([`FieldSink::reset`]), so a steady stream
//! allocates nothing per record.

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
/// scratch buffer. Two words, so it travels in registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    /// The start, with [`IN_SCRATCH`] set when the range is in the scratch buffer.
    start: usize,
    end: usize,
}

/// The bit of [`Span::start`] that says the range is in the scratch buffer (no buffer
/// here comes near 2^63 bytes).
const IN_SCRATCH: usize = 1 << (usize::BITS - 1);

impl Span {
    /// The range `start..end` of the record or, with `in_scratch`, of the scratch buffer.
    fn new(start: usize, end: usize, in_scratch: bool) -> Self {
        let flag = if in_scratch { IN_SCRATCH } else { 0 };
        Self {
            start: start & !IN_SCRATCH | flag,
            end,
        }
    }

    /// Whether the range is in the scratch buffer.
    fn in_scratch(self) -> bool {
        self.start & IN_SCRATCH != 0
    }

    /// The byte range.
    fn range(self) -> std::ops::Range<usize> {
        self.start & !IN_SCRATCH..self.end
    }
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
    /// The fields by key, brought up to date by a replacing member or
    /// [`FieldSink::index_all`]: a record nobody looks into (a plain syslog line) hashes
    /// none of its keys. A lookup reads the fields past it one by one.
    index: KeyIndex,
    /// Whether fields were dropped for the limit.
    pub(crate) truncated: bool,
    max: usize,
    /// Length of the start of the scratch buffer that outlives [`FieldSink::reset`]:
    /// keys a parser names on every record ([`FieldSink::keep_key`]).
    kept: usize,
}

/// The most fields a sink holds past its index: a lookup compares their keys one by
/// one, and a plain syslog line (nine to twelve fields, no lookups) hashes none.
const UNINDEXED_MAX: usize = 16;

/// First size of the key index; it doubles while more than half full.
const FIRST_INDEX_SLOTS: usize = 64;

/// Open addressing over the first fields of a sink, each key's first occurrence.
#[derive(Debug, Default)]
struct KeyIndex {
    /// 0 is an empty slot, else the key's hash in the high 32 bits and the field number
    /// plus one in the low 32.
    slots: Vec<u64>,
    /// How many of the sink's first fields are in it.
    covers: usize,
}

impl KeyIndex {
    /// Forgets every field, keeping the slots' memory.
    fn clear(&mut self) {
        if self.covers > 0 {
            self.slots.fill(0);
        }
        self.covers = 0;
    }

    /// The slot of `key`: the one holding it, with its field, or the empty one where it
    /// would go. There must be slots.
    #[inline(always)]
    fn probe<'k>(
        &self,
        fields: &[(Span, Span)],
        bytes: impl Fn(Span) -> &'k [u8],
        key: &[u8],
        hash: u64,
    ) -> (usize, Option<usize>) {
        let mask = self.slots.len() - 1;
        let mut slot = hash as usize & mask;
        let tag = hash >> 32;
        loop {
            let at = self.slots[slot];
            if at == 0 {
                return (slot, None);
            }
            let field = (at & 0xffff_ffff) as usize - 1;
            if at >> 32 == tag && same_key(bytes(fields[field].0), key) {
                return (slot, Some(field));
            }
            slot = (slot + 1) & mask;
        }
    }

    /// An entry for field `field` whose key hashes to `hash`.
    fn entry(field: usize, hash: u64) -> u64 {
        (hash >> 32) << 32 | (field as u64 + 1)
    }

    /// Adds `fields[covers..]`, each key's first occurrence, and leaves room for one
    /// more field.
    fn catch_up<'k>(&mut self, fields: &[(Span, Span)], bytes: impl Fn(Span) -> &'k [u8] + Copy) {
        if (fields.len() + 1) * 2 > self.slots.len() {
            let mut slots = self.slots.len().max(FIRST_INDEX_SLOTS);
            while (fields.len() + 1) * 2 > slots {
                slots *= 2;
            }
            self.slots.clear();
            self.slots.resize(slots, 0);
            self.covers = 0;
        }
        for (field, (key, _)) in fields.iter().enumerate().skip(self.covers) {
            let key = bytes(*key);
            let hash = key_hash(key);
            if let (slot, None) = self.probe(fields, bytes, key, hash) {
                self.slots[slot] = Self::entry(field, hash);
            }
        }
        self.covers = fields.len();
    }
}

/// The bytes of `span`, in the record `src` or in `scratch`.
#[inline(always)]
fn span_bytes<'k>(src: &'k str, scratch: &'k str, span: Span) -> &'k [u8] {
    let whole = if span.in_scratch() { scratch } else { src };
    whole.as_bytes().get(span.range()).unwrap_or_default()
}

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
            index: KeyIndex::default(),
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
        self.index.clear();
        self.fields.clear();
        self.truncated = false;
    }

    /// The text of a span.
    pub(crate) fn text(&self, span: Span) -> &str {
        let whole = if span.in_scratch() {
            self.scratch.as_str()
        } else {
            self.src
        };
        whole.get(span.range()).unwrap_or_default()
    }

    /// A span of the record `src[start..end]`.
    pub(crate) fn source_span(start: usize, end: usize) -> Span {
        Span::new(start, end, false)
    }

    /// Copies `text` into the scratch buffer.
    pub(crate) fn copy(&mut self, text: &str) -> Span {
        let start = self.scratch.len();
        self.scratch.push_str(text);
        self.scratch_span(start)
    }

    /// Appends the text of `span` to the scratch buffer (it may already be there).
    pub(crate) fn copy_span(&mut self, span: Span) {
        if span.in_scratch() {
            self.scratch.extend_from_within(span.range());
        } else if let Some(t) = self.src.get(span.range()) {
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
        Span::new(start, self.scratch.len(), true)
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
        // The word-at-a-time check first; the byte one is the rule (a vertical tab alone
        // is not white space to it).
        if may_hold_space(key_text.as_bytes())
            && key_text
                .bytes()
                .any(|b| b.is_ascii_whitespace() || b >= 0x80)
            && key_text.contains(char::is_whitespace)
        {
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
        if repeat == Repeat::KeepBoth {
            // Indexed later, at most a few fields later: a lookup reads the fields past
            // the index one by one.
            self.fields.push((key, value));
            if self.fields.len() - self.index.covers > UNINDEXED_MAX {
                self.index_all();
            }
            return;
        }
        let (src, scratch) = (self.src, self.scratch.as_str());
        let bytes = move |span| span_bytes(src, scratch, span);
        let index = &mut self.index;
        index.catch_up(&self.fields, bytes);
        let key_bytes = bytes(key);
        let hash = key_hash(key_bytes);
        match index.probe(&self.fields, bytes, key_bytes, hash) {
            (_, Some(existing)) => self.fields[existing].1 = value,
            (slot, None) => {
                index.slots[slot] = KeyIndex::entry(self.fields.len(), hash);
                self.fields.push((key, value));
                index.covers = self.fields.len();
            }
        }
    }

    /// Value of a field already collected, by exact key (the first, when repeated).
    #[inline(always)]
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.value_span(key).map(|v| self.text(v))
    }

    #[inline(always)]
    fn value_span(&self, key: &str) -> Option<Span> {
        // Hashed here, where a literal key's hash is worked out when compiling.
        let key = key.as_bytes();
        self.find(key, key_hash(key))
    }

    /// The value of the first field whose key is `key`, hashing to `hash`.
    fn find(&self, key: &[u8], hash: u64) -> Option<Span> {
        let (src, scratch) = (self.src, self.scratch.as_str());
        let bytes = move |span| span_bytes(src, scratch, span);
        let index = &self.index;
        if index.covers > 0 {
            if let (_, Some(field)) = index.probe(&self.fields, bytes, key, hash) {
                return Some(self.fields[field].1);
            }
        }
        if index.covers == self.fields.len() {
            return None;
        }
        self.fields
            .get(index.covers..)?
            .iter()
            .find(|(k, _)| same_key(bytes(*k), key))
            .map(|(_, v)| *v)
    }

    /// Indexes every field, for the many lookups of a column mapping.
    pub(crate) fn index_all(&mut self) {
        let (src, scratch) = (self.src, self.scratch.as_str());
        self.index
            .catch_up(&self.fields, move |span| span_bytes(src, scratch, span));
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
    words.remainder().iter().any(|&b| b <= b' ' || b >= 0x80)
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
    fn a_vertical_tab_alone_gives_no_alias() {
        let mut sink = FieldSink::new(&Limits::default());
        sink.push("a\u{b}b", "v");
        sink.push("c\u{a0}d", "w");
        let keys: Vec<_> = sink.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, vec!["a\u{b}b", "cd", "c\u{a0}d"]);
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
    fn lookups_between_additions_see_every_field_added_before_them() {
        let mut sink = FieldSink::new(&Limits::default());
        for i in 0..300 {
            sink.push(format!("k{i}"), format!("v{i}"));
            if i % 7 == 0 {
                assert_eq!(sink.get(&format!("k{i}")), Some(format!("v{i}").as_str()));
                assert_eq!(sink.get(&format!("k{}", i + 1)), None);
            }
        }
        sink.push("k3", "again");
        assert_eq!(sink.get("k3"), Some("v3"));
        // A replacing member after kept ones replaces the first occurrence.
        let src = r#"{"k5":"new"}"#;
        let mut mixed = FieldSink::over(src, &Limits::default());
        mixed.push("k5", "old");
        mixed.push("k6", "six");
        mixed.add(
            FieldSink::source_span(2, 4),
            FieldSink::source_span(7, 10),
            Repeat::Replace,
        );
        assert_eq!(mixed.get("k5"), Some("new"));
        assert_eq!(mixed.len(), 2);
        mixed.reset(src);
        assert_eq!((mixed.get("k5"), mixed.len()), (None, 0));
    }

    #[test]
    fn depth_counts_nesting() {
        assert_eq!(depth(&json!(1)), 0);
        assert_eq!(depth(&json!({"a": [{"b": 1}]})), 3);
    }
}
