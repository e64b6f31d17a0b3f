//! Query results from ClickHouse in `TabSeparatedWithNamesAndTypes` (the one streaming,
//! typed text format that every server version speaks) decoded into Arrow batches.
//!
//! Types map as follows (`Nullable` and `LowCardinality` unwrapped): integers to Int64
//! or UInt64, floats to Float64, `Bool` to Boolean, `Date` to Date32, `DateTime` and
//! `DateTime64` to UTC millisecond timestamps, `Array` of those to lists, `Map` of
//! strings to a map, `Nothing` to null; anything else (decimals, UUIDs, tuples...) to
//! its text.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, ListBuilder, MapBuilder,
    NullArray, RecordBatch, StringBuilder, TimestampMillisecondBuilder, UInt64Builder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use vedette_core::schema::timestamp_type;
use vedette_core::CoreError;

/// Rows per decoded batch.
pub(crate) const BATCH_ROWS: usize = 8192;

/// How one result column is decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Int,
    UInt,
    Float,
    Bool,
    Date,
    /// `DateTime` / `DateTime64`: text `YYYY-MM-DD hh:mm:ss[.fff]`.
    Time,
    Text,
    Nothing,
    /// `Array(T)` of a scalar kind.
    List(Box<Kind>),
    /// `Map(String-like, String-like)`.
    Map,
}

fn unwrap_type(t: &str) -> &str {
    let t = t.trim();
    for wrapper in ["Nullable(", "LowCardinality("] {
        if let Some(inner) = t.strip_prefix(wrapper).and_then(|r| r.strip_suffix(')')) {
            return unwrap_type(inner);
        }
    }
    t
}

fn kind_of(t: &str) -> Kind {
    let t = unwrap_type(t);
    let head = t.split('(').next().unwrap_or(t);
    match head {
        "Int8" | "Int16" | "Int32" | "Int64" => Kind::Int,
        "UInt8" | "UInt16" | "UInt32" | "UInt64" => Kind::UInt,
        "Float32" | "Float64" => Kind::Float,
        "Bool" => Kind::Bool,
        "Date" | "Date32" => Kind::Date,
        "DateTime" | "DateTime64" => Kind::Time,
        "Nothing" => Kind::Nothing,
        "Array" => {
            let inner = t
                .strip_prefix("Array(")
                .and_then(|r| r.strip_suffix(')'))
                .map(kind_of)
                .unwrap_or(Kind::Text);
            match inner {
                Kind::List(_) | Kind::Map | Kind::Nothing => Kind::Text,
                scalar => Kind::List(Box::new(scalar)),
            }
        }
        "Map" => {
            let args = t.strip_prefix("Map(").and_then(|r| r.strip_suffix(')'));
            let stringy = args.is_some_and(|a| a.split(',').all(|p| unwrap_type(p) == "String"));
            if stringy {
                Kind::Map
            } else {
                Kind::Text
            }
        }
        _ => Kind::Text,
    }
}

fn arrow_type(kind: &Kind) -> DataType {
    match kind {
        Kind::Int => DataType::Int64,
        Kind::UInt => DataType::UInt64,
        Kind::Float => DataType::Float64,
        Kind::Bool => DataType::Boolean,
        Kind::Date => DataType::Date32,
        Kind::Time => timestamp_type(),
        Kind::Text => DataType::Utf8,
        Kind::Nothing => DataType::Null,
        Kind::List(inner) => DataType::List(Arc::new(Field::new("item", arrow_type(inner), true))),
        Kind::Map => vedette_core::schema::field_map_type(),
    }
}

/// Column builders of one batch.
enum Builder {
    Int(Int64Builder),
    UInt(UInt64Builder),
    Float(Float64Builder),
    Bool(BooleanBuilder),
    Date(Date32Builder),
    Time(TimestampMillisecondBuilder),
    Text(StringBuilder),
    Nothing(usize),
    List(Box<Kind>, ListBuilder<Box<dyn arrow::array::ArrayBuilder>>),
    Map(Box<MapBuilder<StringBuilder, StringBuilder>>),
}

fn builder(kind: &Kind) -> Builder {
    match kind {
        Kind::Int => Builder::Int(Int64Builder::new()),
        Kind::UInt => Builder::UInt(UInt64Builder::new()),
        Kind::Float => Builder::Float(Float64Builder::new()),
        Kind::Bool => Builder::Bool(BooleanBuilder::new()),
        Kind::Date => Builder::Date(Date32Builder::new()),
        Kind::Time => Builder::Time(TimestampMillisecondBuilder::new().with_timezone("UTC")),
        Kind::Text => Builder::Text(StringBuilder::new()),
        Kind::Nothing => Builder::Nothing(0),
        Kind::List(inner) => Builder::List(
            inner.clone(),
            ListBuilder::new(arrow::array::make_builder(&arrow_type(inner), 0)),
        ),
        Kind::Map => Builder::Map(Box::new(MapBuilder::new(
            Some(arrow::array::builder::MapFieldNames {
                entry: "entries".into(),
                key: "keys".into(),
                value: "values".into(),
            }),
            StringBuilder::new(),
            StringBuilder::new(),
        ))),
    }
}

/// Decodes a `TabSeparatedWithNamesAndTypes` response, chunk by chunk.
pub(crate) struct TsvDecoder {
    pending: Vec<u8>,
    header: Vec<String>,
    schema: Option<SchemaRef>,
    kinds: Vec<Kind>,
    builders: Vec<Builder>,
    rows: usize,
}

impl TsvDecoder {
    /// A decoder waiting for the two header lines.
    pub(crate) fn new() -> Self {
        Self {
            pending: Vec::new(),
            header: Vec::new(),
            schema: None,
            kinds: Vec::new(),
            builders: Vec::new(),
            rows: 0,
        }
    }

    /// Feeds one chunk; returns the batches it completed.
    pub(crate) fn feed(&mut self, chunk: &[u8]) -> Result<Vec<RecordBatch>, CoreError> {
        self.pending.extend_from_slice(chunk);
        let mut out = Vec::new();
        let mut start = 0;
        while let Some(nl) = self.pending[start..].iter().position(|&b| b == b'\n') {
            let line = self.pending[start..start + nl].to_vec();
            start += nl + 1;
            self.line(&line)?;
            if self.rows >= BATCH_ROWS {
                out.push(self.take()?);
            }
        }
        self.pending.drain(..start);
        Ok(out)
    }

    /// Ends the response; returns the last batch (an empty one when the result has no
    /// rows, so that callers still see its columns).
    pub(crate) fn finish(mut self) -> Result<Option<RecordBatch>, CoreError> {
        if !self.pending.is_empty() {
            let line = std::mem::take(&mut self.pending);
            self.line(&line)?;
        }
        if self.schema.is_none() {
            return Ok(None);
        }
        Ok(Some(self.take()?))
    }

    fn line(&mut self, line: &[u8]) -> Result<(), CoreError> {
        // Binary values (raw dead letters, payloads) are shown as text, lossily.
        let text = String::from_utf8_lossy(line);
        let cells: Vec<&str> = text.split('\t').collect();
        if self.header.is_empty() {
            self.header = cells.iter().map(|c| unescape(c)).collect();
            return Ok(());
        }
        if self.schema.is_none() {
            if cells.len() != self.header.len() {
                return Err(bad_result("type line does not match the names"));
            }
            self.kinds = cells.iter().map(|t| kind_of(&unescape(t))).collect();
            let fields: Vec<Field> = self
                .header
                .iter()
                .zip(&self.kinds)
                .map(|(name, kind)| Field::new(name, arrow_type(kind), true))
                .collect();
            self.schema = Some(Arc::new(Schema::new(fields)));
            self.builders = self.kinds.iter().map(builder).collect();
            return Ok(());
        }
        if cells.len() != self.kinds.len() {
            // A server error after the first rows arrives as text in the body.
            return Err(CoreError::External {
                service: "clickhouse".into(),
                message: format!("query failed while streaming: {}", text.trim()),
                retryable: false,
            });
        }
        for (cell, b) in cells.iter().zip(self.builders.iter_mut()) {
            append_cell(b, cell)?;
        }
        self.rows += 1;
        Ok(())
    }

    fn take(&mut self) -> Result<RecordBatch, CoreError> {
        let schema = self
            .schema
            .clone()
            .ok_or_else(|| bad_result("rows before the header"))?;
        let columns: Vec<ArrayRef> = self.builders.iter_mut().map(finish_builder).collect();
        self.rows = 0;
        Ok(RecordBatch::try_new(schema, columns)?)
    }
}

fn bad_result(what: &str) -> CoreError {
    CoreError::Internal(format!("clickhouse: unreadable result: {what}"))
}

fn finish_builder(b: &mut Builder) -> ArrayRef {
    match b {
        Builder::Int(b) => Arc::new(b.finish()),
        Builder::UInt(b) => Arc::new(b.finish()),
        Builder::Float(b) => Arc::new(b.finish()),
        Builder::Bool(b) => Arc::new(b.finish()),
        Builder::Date(b) => Arc::new(b.finish()),
        Builder::Time(b) => Arc::new(b.finish()),
        Builder::Text(b) => Arc::new(b.finish()),
        Builder::Nothing(n) => {
            let a = Arc::new(NullArray::new(*n));
            *n = 0;
            a
        }
        Builder::List(_, b) => Arc::new(b.finish()),
        Builder::Map(b) => Arc::new(b.finish()),
    }
}

fn append_cell(b: &mut Builder, cell: &str) -> Result<(), CoreError> {
    let null = cell == "\\N";
    match b {
        Builder::Int(b) => b.append_option(if null { None } else { Some(number(cell)?) }),
        Builder::UInt(b) => b.append_option(if null { None } else { Some(number(cell)?) }),
        Builder::Float(b) => b.append_option(if null { None } else { Some(float(cell)?) }),
        Builder::Bool(b) => b.append_option(if null {
            None
        } else {
            Some(cell == "true" || cell == "1")
        }),
        Builder::Date(b) => b.append_option(if null { None } else { Some(date(cell)?) }),
        Builder::Time(b) => b.append_option(if null { None } else { Some(time_ms(cell)?) }),
        Builder::Text(b) => b.append_option(if null { None } else { Some(unescape(cell)) }),
        Builder::Nothing(n) => *n += 1,
        Builder::List(kind, b) => {
            if null {
                b.append_null();
            } else {
                // Arrays and maps are written with their own quoting, not TSV-escaped.
                for item in parse_items(cell, '[', ']')? {
                    append_item(b.values(), kind, item)?;
                }
                b.append(true);
            }
        }
        Builder::Map(b) => {
            if null {
                b.append(false)?;
            } else {
                for item in parse_items(cell, '{', '}')? {
                    let (k, v) = split_pair(&item)?;
                    b.keys().append_value(k.unwrap_or_default());
                    b.values().append_option(v);
                }
                b.append(true)?;
            }
        }
    }
    Ok(())
}

fn append_item(
    values: &mut Box<dyn arrow::array::ArrayBuilder>,
    kind: &Kind,
    item: Item,
) -> Result<(), CoreError> {
    let any = values.as_any_mut();
    let missing = || bad_result("array item of an unexpected type");
    match kind {
        Kind::Int => {
            let b = any.downcast_mut::<Int64Builder>().ok_or_else(missing)?;
            b.append_option(item.text().map(|t| number(&t)).transpose()?);
        }
        Kind::UInt => {
            let b = any.downcast_mut::<UInt64Builder>().ok_or_else(missing)?;
            b.append_option(item.text().map(|t| number(&t)).transpose()?);
        }
        Kind::Float => {
            let b = any.downcast_mut::<Float64Builder>().ok_or_else(missing)?;
            b.append_option(item.text().map(|t| float(&t)).transpose()?);
        }
        Kind::Bool => {
            let b = any.downcast_mut::<BooleanBuilder>().ok_or_else(missing)?;
            b.append_option(item.text().map(|t| t == "true" || t == "1"));
        }
        Kind::Date => {
            let b = any.downcast_mut::<Date32Builder>().ok_or_else(missing)?;
            b.append_option(item.text().map(|t| date(&t)).transpose()?);
        }
        Kind::Time => {
            let b = any
                .downcast_mut::<TimestampMillisecondBuilder>()
                .ok_or_else(missing)?;
            b.append_option(item.text().map(|t| time_ms(&t)).transpose()?);
        }
        _ => {
            let b = any.downcast_mut::<StringBuilder>().ok_or_else(missing)?;
            b.append_option(item.text());
        }
    }
    Ok(())
}

/// One element of an array or map literal.
#[derive(Debug, Clone, PartialEq)]
enum Item {
    Null,
    /// A quoted string, unescaped, or a bare token (number, nested literal).
    Value(String),
    /// `key:value` inside a map.
    Pair(Option<String>, Option<String>),
}

impl Item {
    fn text(self) -> Option<String> {
        match self {
            Item::Null => None,
            Item::Value(v) => Some(v),
            Item::Pair(..) => None,
        }
    }
}

fn split_pair(item: &Item) -> Result<(Option<String>, Option<String>), CoreError> {
    match item {
        Item::Pair(k, v) => Ok((k.clone(), v.clone())),
        _ => Err(bad_result("map entry without a key")),
    }
}

/// Parses `[a,b]` or `{k:v,...}` as rendered by ClickHouse into items.
fn parse_items(text: &str, open: char, close: char) -> Result<Vec<Item>, CoreError> {
    let inner = text
        .trim()
        .strip_prefix(open)
        .and_then(|r| r.strip_suffix(close))
        .ok_or_else(|| bad_result("array or map literal"))?;
    let chars: Vec<char> = inner.chars().collect();
    let mut i = 0;
    let mut items = Vec::new();
    let mut key: Option<Item> = None;
    while i < chars.len() {
        let (item, next) = scalar(&chars, i)?;
        i = next;
        match chars.get(i) {
            Some(':') if open == '{' => {
                key = Some(item);
                i += 1;
                continue;
            }
            Some(',') | None => {
                i += 1;
            }
            Some(_) => return Err(bad_result("array or map literal")),
        }
        match key.take() {
            Some(k) => items.push(Item::Pair(k.text(), item.text())),
            None => items.push(item),
        }
    }
    Ok(items)
}

/// One scalar at `i`: a quoted string, `NULL`, or a bare token up to `,` / `:` /
/// the end (nested brackets kept whole).
fn scalar(chars: &[char], mut i: usize) -> Result<(Item, usize), CoreError> {
    if chars.get(i) == Some(&'\'') {
        let mut s = String::new();
        i += 1;
        loop {
            match chars.get(i) {
                None => return Err(bad_result("unterminated string in a literal")),
                Some('\\') => {
                    if let Some(&c) = chars.get(i + 1) {
                        s.push(escaped(c));
                    }
                    i += 2;
                }
                Some('\'') => {
                    i += 1;
                    break;
                }
                Some(&c) => {
                    s.push(c);
                    i += 1;
                }
            }
        }
        return Ok((Item::Value(s), i));
    }
    let start = i;
    let mut depth = 0i32;
    while let Some(&c) = chars.get(i) {
        match c {
            '[' | '(' | '{' => depth += 1,
            ']' | ')' | '}' => depth -= 1,
            ',' | ':' if depth == 0 => break,
            _ => {}
        }
        i += 1;
    }
    let token: String = chars[start..i].iter().collect();
    if token == "NULL" {
        Ok((Item::Null, i))
    } else {
        Ok((Item::Value(token), i))
    }
}

fn escaped(c: char) -> char {
    match c {
        'n' => '\n',
        't' => '\t',
        'r' => '\r',
        '0' => '\0',
        'b' => '\u{8}',
        'f' => '\u{c}',
        other => other,
    }
}

/// Undoes the escaping of one TSV cell.
fn unescape(cell: &str) -> String {
    if !cell.contains('\\') {
        return cell.to_string();
    }
    let mut out = String::with_capacity(cell.len());
    let mut chars = cell.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(escaped(n));
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn number<T: std::str::FromStr>(cell: &str) -> Result<T, CoreError> {
    cell.trim_matches('\'')
        .parse()
        .map_err(|_| bad_result(&format!("`{cell}` is not a number")))
}

fn float(cell: &str) -> Result<f64, CoreError> {
    match cell {
        "nan" | "-nan" => Ok(f64::NAN),
        "inf" | "+inf" => Ok(f64::INFINITY),
        "-inf" => Ok(f64::NEG_INFINITY),
        _ => number(cell),
    }
}

fn date(cell: &str) -> Result<i32, CoreError> {
    if cell.starts_with("0000-00-00") {
        return Ok(0);
    }
    let d = chrono::NaiveDate::parse_from_str(cell.trim_matches('\''), "%Y-%m-%d")
        .map_err(|_| bad_result(&format!("`{cell}` is not a date")))?;
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    Ok((d - epoch).num_days() as i32)
}

/// `YYYY-MM-DD hh:mm:ss[.fraction]`, read as UTC, to Unix milliseconds.
fn time_ms(cell: &str) -> Result<i64, CoreError> {
    // The zero value of `DateTime` columns.
    if cell.starts_with("0000-00-00") {
        return Ok(0);
    }
    let t = chrono::NaiveDateTime::parse_from_str(cell.trim_matches('\''), "%Y-%m-%d %H:%M:%S%.f")
        .map_err(|_| bad_result(&format!("`{cell}` is not a date and time")))?;
    Ok(t.and_utc().timestamp_millis())
}

#[cfg(test)]
mod tests {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Int64Type, TimestampMillisecondType, UInt64Type};

    use super::*;

    #[test]
    fn typed_rows_become_arrow_columns() {
        let text = "n\tc\tt\ttags\tm\tnothing\n\
                    Nullable(String)\tUInt64\tDateTime('UTC')\tArray(String)\tMap(LowCardinality(String), String)\tNullable(Nothing)\n\
                    a\\tb\t3\t2026-11-21 10:00:00\t['x','y\\'z']\t{'k':'v','k2':''}\t\\N\n\
                    \\N\t4\t2026-11-21 10:00:01.250\t[]\t{}\t\\N\n";
        let mut d = TsvDecoder::new();
        // Split in the middle of a row: the decoder must join the pieces.
        let (first, second) = text.as_bytes().split_at(90);
        assert!(d.feed(first).unwrap().is_empty());
        assert!(d.feed(second).unwrap().is_empty());
        let batch = d.finish().unwrap().unwrap();
        assert_eq!(batch.num_rows(), 2);
        let n = batch.column(0).as_string::<i32>();
        assert_eq!(n.value(0), "a\tb");
        assert!(n.is_null(1));
        assert_eq!(batch.column(1).as_primitive::<UInt64Type>().value(1), 4);
        let t = batch.column(2).as_primitive::<TimestampMillisecondType>();
        assert_eq!(t.value(1) - t.value(0), 1250);
        let tags = batch.column(3).as_list::<i32>();
        let first_tags = tags.value(0);
        assert_eq!(first_tags.as_string::<i32>().value(1), "y'z");
        assert_eq!(tags.value(1).len(), 0);
        let m = batch.column(4).as_map();
        assert_eq!(m.value(0).len(), 2);
        assert_eq!(batch.column(5).logical_null_count(), 2);
    }

    #[test]
    fn empty_results_keep_their_columns() {
        let mut d = TsvDecoder::new();
        d.feed(b"count()\nUInt64\n").unwrap();
        let batch = d.finish().unwrap().unwrap();
        assert_eq!(batch.num_rows(), 0);
        assert_eq!(batch.schema().field(0).name(), "count()");
    }

    #[test]
    fn numeric_arrays_and_large_results() {
        let mut d = TsvDecoder::new();
        d.feed(b"a\nArray(Int64)\n").unwrap();
        let mut batches = Vec::new();
        for i in 0..BATCH_ROWS + 3 {
            batches.extend(d.feed(format!("[{i},-1]\n").as_bytes()).unwrap());
        }
        batches.extend(d.finish().unwrap());
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        assert_eq!(rows, BATCH_ROWS + 3);
        let last = batches[1].column(0).as_list::<i32>().value(2);
        assert_eq!(
            last.as_primitive::<Int64Type>().values(),
            &[BATCH_ROWS as i64 + 2, -1]
        );
    }

    #[test]
    fn a_server_error_mid_stream_is_reported() {
        let mut d = TsvDecoder::new();
        d.feed(b"a\tb\nUInt8\tUInt8\n1\t2\n").unwrap();
        let err = d
            .feed(b"Code: 159. DB::Exception: Timeout exceeded\n")
            .unwrap_err();
        assert!(err.to_string().contains("Timeout exceeded"), "{err}");
    }

    #[test]
    fn garbage_cells_are_errors_not_panics() {
        let mut d = TsvDecoder::new();
        d.feed(b"a\tb\tc\nUInt8\tArray(String)\tMap(String, String)\n")
            .unwrap();
        assert!(d.feed(b"x\t[]\t{}\n").is_err());
        let mut d = TsvDecoder::new();
        d.feed(b"b\nArray(String)\n").unwrap();
        assert!(d.feed(b"['open\n").is_err());
        let mut d = TsvDecoder::new();
        d.feed(b"m\nMap(String, String)\n").unwrap();
        assert!(d.feed(b"{'k'}\n").is_err());
    }
}
