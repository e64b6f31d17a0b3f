//! Raw fields that repeat the end of the original line, stored once.
//!
//! A syslog record's message part (`syslog.message`) is the end of its original line
//! (`message`): for plain syslog, CEF and PAN-OS alike, so an events file held the same
//! text twice (a tenth of the bytes of a mixed stream). Where a row's value of such a
//! key is the end of its `message`, the file stores null in the key's column
//! (`fields.syslog.message`) and, in the column `message_from.syslog.message`, the byte
//! offset in `message` where the value starts; any other value is stored as it is.
//!
//! Reading puts the value back ([`join`] in Rust, [`MessageTail`] in queries), so the
//! table, its `fields` map and `fields['syslog.message']` show every value as it was.

use std::sync::{Arc, OnceLock};

use arrow::array::{
    Array, ArrayRef, AsArray, Int32Array, Int32Builder, RecordBatch, StringArray, StringBuilder,
};
use arrow::datatypes::{DataType, Int32Type};
use datafusion::common::Result;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use vedette_core::schema::col;
use vedette_core::CoreError;

use super::rows::RowRef;

/// The shredded keys whose value is stored as an offset into `message` when it is the
/// end of it.
pub(crate) const TAIL_KEYS: &[&str] = &["syslog.message"];

/// Prefix of the offset column of a key: `message_from.syslog.message`.
pub(crate) const PREFIX: &str = "message_from.";

/// The offset column's name of tail key `key`.
pub(crate) fn column_name(key: &str) -> String {
    format!("{PREFIX}{key}")
}

/// Builds the two columns of one tail key, row by row.
pub(crate) struct TailColumns {
    text: StringBuilder,
    starts: Int32Builder,
}

impl TailColumns {
    /// Room for `rows` rows and `bytes` bytes of values kept as text.
    pub(crate) fn with_capacity(rows: usize, bytes: usize) -> Self {
        Self {
            text: StringBuilder::with_capacity(rows, bytes),
            starts: Int32Builder::with_capacity(rows),
        }
    }

    /// `n` rows without the key.
    pub(crate) fn append_nulls(&mut self, n: usize) {
        self.text.append_nulls(n);
        self.starts.append_nulls(n);
    }

    /// A row whose value is `value` and whose original line is `message`: an offset
    /// when the value is the end of the line, else the value itself. An empty value
    /// stays text (it is the end of every line).
    pub(crate) fn append(&mut self, value: &str, message: Option<&str>) {
        let start = message
            .filter(|m| !value.is_empty() && m.ends_with(value))
            .and_then(|m| i32::try_from(m.len() - value.len()).ok());
        match start {
            Some(start) => {
                self.text.append_null();
                self.starts.append_value(start);
            }
            None => {
                self.text.append_value(value);
                self.starts.append_null();
            }
        }
    }

    /// The key's text column and its offset column.
    pub(crate) fn finish(mut self) -> (ArrayRef, ArrayRef) {
        (Arc::new(self.text.finish()), Arc::new(self.starts.finish()))
    }
}

/// A tail key's values: `text` where it holds one, else the end of `message` from
/// `starts`. An offset that does not fall on a character of its row's `message` (a
/// damaged file) is an error.
pub(crate) fn join(
    text: &StringArray,
    message: &StringArray,
    starts: &Int32Array,
) -> Result<StringArray, CoreError> {
    let rows = text.len();
    if message.len() != rows || starts.len() != rows {
        return Err(CoreError::Internal(format!(
            "a message tail of {rows} rows over {} messages and {} offsets",
            message.len(),
            starts.len()
        )));
    }
    let mut out = StringBuilder::with_capacity(rows, 0);
    for row in 0..rows {
        if text.is_valid(row) {
            out.append_value(text.value(row));
        } else if starts.is_valid(row) {
            let start = usize::try_from(starts.value(row)).ok();
            let tail = start
                .filter(|_| message.is_valid(row))
                .and_then(|s| message.value(row).get(s..))
                .ok_or_else(|| {
                    CoreError::Internal(format!(
                        "row {row}: offset {} is not within its message",
                        starts.value(row)
                    ))
                })?;
            out.append_value(tail);
        } else {
            out.append_null();
        }
    }
    Ok(out.finish())
}

/// The values of shredded key `key` of a stored `batch`: its column `text`, with the
/// values stored as offsets into `message` put back where the batch has them.
pub(crate) fn stored_values(
    batch: &RecordBatch,
    key: &str,
    text: &StringArray,
) -> Result<StringArray, CoreError> {
    let Some(starts) = batch.column_by_name(&column_name(key)) else {
        return Ok(text.clone());
    };
    let messages = batch.column_by_name(col::MESSAGE);
    match (
        starts.as_primitive_opt::<Int32Type>(),
        messages.and_then(|m| m.as_string_opt::<i32>()),
    ) {
        (Some(starts), Some(messages)) => join(text, messages, starts),
        _ => Err(CoreError::Internal(format!(
            "the message offsets of {key}: not 32-bit integers, or no text message"
        ))),
    }
}

/// The text and offset columns of a key of [`TAIL_KEYS`] from its `hits` (row out,
/// batch, entry), each value compared with its row's message.
pub(crate) fn tail_columns(
    hits: &[(usize, usize, usize)],
    values: &[StringArray],
    messages: &[Option<&StringArray>],
    rows: &[RowRef],
) -> (ArrayRef, ArrayRef) {
    let mut columns = TailColumns::with_capacity(rows.len(), 0);
    let mut next = 0;
    for &(out, b, entry) in hits {
        columns.append_nulls(out - next);
        let row = rows[out].1;
        let message = messages[b]
            .filter(|m| m.is_valid(row))
            .map(|m| m.value(row));
        columns.append(values[b].value(entry), message);
        next = out + 1;
    }
    columns.append_nulls(rows.len() - next);
    columns.finish()
}

/// `vedette_message_tail(text, message, start)`: [`join`] in a query, the value of a
/// tail key as the table shows it.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct MessageTail {
    signature: Signature,
}

impl MessageTail {
    /// The function, shared.
    pub(crate) fn udf() -> Arc<ScalarUDF> {
        static UDF: OnceLock<Arc<ScalarUDF>> = OnceLock::new();
        UDF.get_or_init(|| {
            Arc::new(ScalarUDF::new_from_impl(MessageTail {
                signature: Signature::exact(
                    vec![DataType::Utf8, DataType::Utf8, DataType::Int32],
                    Volatility::Immutable,
                ),
            }))
        })
        .clone()
    }
}

impl ScalarUDFImpl for MessageTail {
    fn name(&self) -> &str {
        "vedette_message_tail"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let execution =
            |m: String| DataFusionError::Execution(format!("vedette_message_tail: {m}"));
        let [text, message, starts] = args.args.as_slice() else {
            return Err(execution(
                "takes the text, the message and the offset".into(),
            ));
        };
        let rows = args.number_rows;
        let (text, message, starts) = (
            text.to_array(rows)?,
            message.to_array(rows)?,
            starts.to_array(rows)?,
        );
        let (Some(text), Some(message), Some(starts)) = (
            text.as_string_opt::<i32>(),
            message.as_string_opt::<i32>(),
            starts.as_primitive_opt::<Int32Type>(),
        ) else {
            return Err(execution(format!(
                "arguments of types {}, {}, {}",
                text.data_type(),
                message.data_type(),
                starts.data_type()
            )));
        };
        let joined = join(text, message, starts).map_err(|e| execution(e.to_string()))?;
        Ok(ColumnarValue::Array(Arc::new(joined)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(rows: &[(Option<&str>, Option<&str>)]) -> (StringArray, Int32Array) {
        let mut columns = TailColumns::with_capacity(rows.len(), 0);
        for (value, message) in rows {
            match value {
                Some(v) => columns.append(v, *message),
                None => columns.append_nulls(1),
            }
        }
        let (text, starts) = columns.finish();
        (
            text.as_string::<i32>().clone(),
            starts.as_primitive::<Int32Type>().clone(),
        )
    }

    #[test]
    fn the_end_of_the_line_is_stored_as_an_offset_and_comes_back() {
        let line = "<13>1 2026-12-06T10:00:00Z h app - - - süß: session opened";
        let rows = [
            (Some("süß: session opened"), Some(line)),
            (Some("something else"), Some(line)),
            (Some(""), Some(line)),
            (None, Some(line)),
            (Some("no line"), None),
            (Some(line), Some(line)),
        ];
        let (text, starts) = split(&rows);
        assert_eq!(
            starts.value(0) as usize,
            line.len() - "süß: session opened".len()
        );
        assert!(text.is_null(0));
        assert_eq!(text.value(1), "something else");
        assert!(starts.is_null(1));
        assert_eq!((text.value(2), starts.is_null(2)), ("", true));
        assert!(text.is_null(3) && starts.is_null(3));
        assert_eq!(text.value(4), "no line");
        assert_eq!(starts.value(5), 0);
        let messages = StringArray::from(rows.iter().map(|r| r.1).collect::<Vec<_>>());
        let back = join(&text, &messages, &starts).unwrap();
        let want = StringArray::from(rows.iter().map(|r| r.0).collect::<Vec<_>>());
        assert_eq!(back, want);
    }

    #[test]
    fn an_offset_outside_its_message_or_inside_a_character_is_an_error() {
        let text = StringArray::from(vec![None::<&str>]);
        for (message, start) in [
            (Some("süß"), 2),
            (Some("abc"), 4),
            (Some("abc"), -1),
            (None, 0),
        ] {
            let messages = StringArray::from(vec![message]);
            let err = join(&text, &messages, &Int32Array::from(vec![start])).unwrap_err();
            assert!(err.to_string().contains("not within its message"), "{err}");
        }
        let err = join(
            &text,
            &StringArray::from(vec!["a", "b"]),
            &Int32Array::from(vec![0]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("1 rows"), "{err}");
    }
}
