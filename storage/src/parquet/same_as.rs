//! Raw fields that repeat another column of their event, stored once.
//!
//! Parsers fill the common columns from the raw fields, so a Sysmon event's
//! `fields.CommandLine` is its `process.command_line`, its `ProcessId` its `process.pid`,
//! and the Windows parser adds `TimeCreated` as another name of `TimeCreated_SystemTime`.
//! Where a row's value of such a key is its source column's value (as text), an events
//! file stores null in the key's column and true in the flag column
//! `repeats:CommandLine=process.command_line`; any other value is stored as it is. The
//! flag column's name says which key and which column, so a file reads back whatever
//! this list says later. (Files with flag columns are also the ones whose map keys are
//! escaped, [`super::map_refs`].)
//!
//! Reading puts the value back ([`join`] in Rust, [`SameAs`] in queries).

use std::sync::{Arc, OnceLock};

use arrow::array::{
    new_null_array, Array, ArrayRef, AsArray, BooleanArray, RecordBatch, StringArray,
};
use arrow::buffer::NullBuffer;
use arrow::compute::cast;
use arrow::compute::kernels::boolean::{and, and_not, is_not_null, is_null};
use arrow::compute::kernels::cmp::eq;
use arrow::compute::kernels::nullif::nullif;
use arrow::compute::kernels::zip::zip;
use arrow::datatypes::{DataType, Schema};
use arrow::error::ArrowError;
use datafusion::common::Result;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use vedette_core::CoreError;

use super::shredding::{self, file_schema};

/// Shredded keys and the column whose value they usually repeat: a common column of
/// the event schema, or another shredded key's column (never one of these keys).
pub(crate) const SAME_AS: &[(&str, &str)] = &[
    ("TimeCreated", "fields.TimeCreated_SystemTime"),
    ("CommandLine", "process.command_line"),
    ("ParentCommandLine", "process.parent.command_line"),
    ("Image", "process.executable"),
    ("ParentImage", "process.parent.executable"),
    ("ProcessId", "process.pid"),
    ("TargetFilename", "file.path"),
    ("IpAddress", "source.ip"),
    ("SourceIp", "source.ip"),
    ("sourceIPAddress", "source.ip"),
    ("DestinationIp", "destination.ip"),
    ("DestinationPort", "destination.port"),
    ("TargetUserName", "user.name"),
    ("EventID", "event.code"),
    ("Computer", "host.name"),
    ("Provider_Name", "event.provider"),
    ("eventName", "event.action"),
    ("eventSource", "event.provider"),
    ("syslog.appname", "event.provider"),
    ("syslog.hostname", "host.name"),
];

/// Prefix of a flag column's name.
const PREFIX: &str = "repeats:";

/// The flag column's name of `key` repeating `source`.
pub(crate) fn column_name(key: &str, source: &str) -> String {
    format!("{PREFIX}{key}={source}")
}

/// The key and source column a flag column's name says.
pub(crate) fn parse_column_name(name: &str) -> Option<(&str, &str)> {
    name.strip_prefix(PREFIX)?.split_once('=')
}

/// The flag column of shredded key `key` in `schema`, with its source column, if the
/// schema has one.
pub(crate) fn flag_of<'a>(schema: &'a Schema, key: &str) -> Option<(&'a str, &'a str)> {
    schema.fields().iter().find_map(|f| {
        let (k, source) = parse_column_name(f.name())?;
        (k == key).then_some((f.name().as_str(), source))
    })
}

/// Whether a file of `schema` has flag columns (the layout that escapes map keys).
pub(crate) fn has_flags(schema: &Schema) -> bool {
    schema
        .fields()
        .iter()
        .any(|f| parse_column_name(f.name()).is_some())
}

/// `column` as text, as the flags compare it and [`join`] renders it.
pub(crate) fn as_text(column: &ArrayRef) -> Result<StringArray, CoreError> {
    let text = cast(column, &DataType::Utf8)
        .map_err(|e| CoreError::Internal(format!("{} as text: {e}", column.data_type())))?;
    text.as_string_opt::<i32>()
        .cloned()
        .ok_or_else(|| CoreError::Internal("a cast to text gave no text".into()))
}

/// Folds `text` (a key's values) against `source`: the key's column with the values
/// that repeat `source` taken out, and the flag column that says which (true there,
/// null elsewhere).
pub(crate) fn fold(
    text: &StringArray,
    source: &ArrayRef,
) -> Result<(ArrayRef, ArrayRef), CoreError> {
    let rows = text.len();
    if text.null_count() == rows {
        return Ok((
            Arc::new(text.clone()),
            new_null_array(&DataType::Boolean, rows),
        ));
    }
    let kernel = |e: ArrowError| CoreError::Internal(format!("folding a repeated key: {e}"));
    let source = as_text(source)?;
    let same = only_true(&eq(text, &source).map_err(kernel)?);
    let kept = nullif(text, &same).map_err(kernel)?;
    let flags = BooleanArray::new(
        same.values().clone(),
        Some(NullBuffer::new(same.values().clone())),
    );
    Ok((kept, Arc::new(flags)))
}

/// `mask` with its nulls read as false, without nulls.
fn only_true(mask: &BooleanArray) -> BooleanArray {
    match mask.nulls() {
        Some(nulls) => BooleanArray::new(mask.values() & nulls.inner(), None),
        None => mask.clone(),
    }
}

/// A key's values: `text` where it holds one, else `source` (as text) where `flags` say.
pub(crate) fn join(
    text: &StringArray,
    source: &ArrayRef,
    flags: &BooleanArray,
) -> Result<StringArray, CoreError> {
    let rows = text.len();
    if source.len() != rows || flags.len() != rows {
        return Err(CoreError::Internal(format!(
            "a repeated key of {rows} rows over a source of {} and {} flags",
            source.len(),
            flags.len()
        )));
    }
    if flags.true_count() == 0 {
        return Ok(text.clone());
    }
    let kernel = |e: ArrowError| CoreError::Internal(format!("a repeated key: {e}"));
    let source = as_text(source)?;
    // A value and its flag are never both there; if a damaged file has both, the value.
    let take_source =
        and_not(&only_true(flags), &is_not_null(text).map_err(kernel)?).map_err(kernel)?;
    // A flag is only written where the source has the value.
    let missing = and(&take_source, &is_null(&source).map_err(kernel)?).map_err(kernel)?;
    if missing.true_count() > 0 {
        return Err(CoreError::Internal(format!(
            "{} rows flagged as repeating a source that has no value there",
            missing.true_count()
        )));
    }
    let joined = zip(&take_source, &source, text).map_err(kernel)?;
    joined
        .as_string_opt::<i32>()
        .cloned()
        .ok_or_else(|| CoreError::Internal("a repeated key's values are not text".into()))
}

/// The values of shredded key `key` of a stored `batch` (`values`, its column with any
/// offsets put back), with the values flagged as repeating another column put back.
pub(crate) fn stored_values(
    batch: &RecordBatch,
    key: &str,
    values: StringArray,
) -> Result<StringArray, CoreError> {
    let schema = batch.schema();
    let Some((flag_name, source)) = flag_of(&schema, key) else {
        return Ok(values);
    };
    let missing = |name: &str| CoreError::Internal(format!("{key} repeats {source}: no {name}"));
    let source_column = batch
        .column_by_name(source)
        .ok_or_else(|| missing(source))?;
    let flags = batch
        .column_by_name(flag_name)
        .and_then(|f| f.as_boolean_opt())
        .ok_or_else(|| missing("boolean flags"))?;
    join(&values, source_column, flags)
}

/// The columns of `file_schema()` up to the flags of [`SAME_AS`] (the event's columns,
/// the shredded keys', the offsets of [`super::message_tail::TAIL_KEYS`]): each key of [`SAME_AS`] folded
/// against its source, and the flag columns appended.
pub(crate) fn fold_all(mut columns: Vec<ArrayRef>) -> Result<Vec<ArrayRef>, CoreError> {
    let schema = file_schema();
    let index = |name: &str| {
        schema
            .index_of(name)
            .map_err(|e| CoreError::Internal(format!("folding repeated keys: {e}")))
    };
    let mut flags = Vec::with_capacity(SAME_AS.len());
    for (key, source) in SAME_AS {
        let at = index(&shredding::column_name(key))?;
        let text = columns
            .get(at)
            .and_then(|c| c.as_string_opt::<i32>())
            .ok_or_else(|| CoreError::Internal(format!("{key} is not a text column")))?;
        let source = columns
            .get(index(source)?)
            .ok_or_else(|| CoreError::Internal(format!("no column {source}")))?;
        let (kept, flag) = fold(text, source)?;
        columns[at] = kept;
        flags.push(flag);
    }
    columns.extend(flags);
    Ok(columns)
}

/// `vedette_same_as(text, source, flag)`: [`join`] in a query, the value of a key that
/// may repeat its source column, as the table shows it.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct SameAs {
    signature: Signature,
}

impl SameAs {
    /// The function, shared.
    pub(crate) fn udf() -> Arc<ScalarUDF> {
        static UDF: OnceLock<Arc<ScalarUDF>> = OnceLock::new();
        UDF.get_or_init(|| {
            Arc::new(ScalarUDF::new_from_impl(SameAs {
                signature: Signature::any(3, Volatility::Immutable),
            }))
        })
        .clone()
    }
}

impl ScalarUDFImpl for SameAs {
    fn name(&self) -> &str {
        "vedette_same_as"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let execution = |m: String| DataFusionError::Execution(format!("vedette_same_as: {m}"));
        let [text, source, flags] = args.args.as_slice() else {
            return Err(execution("takes the text, the source and the flag".into()));
        };
        let rows = args.number_rows;
        let (text, source, flags) = (
            text.to_array(rows)?,
            source.to_array(rows)?,
            flags.to_array(rows)?,
        );
        let (Some(text), Some(flags)) = (text.as_string_opt::<i32>(), flags.as_boolean_opt())
        else {
            return Err(execution(format!(
                "text of type {} and flags of type {}",
                text.data_type(),
                flags.data_type()
            )));
        };
        let joined = join(text, &source, flags).map_err(|e| execution(e.to_string()))?;
        Ok(ColumnarValue::Array(Arc::new(joined)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;

    #[test]
    fn values_that_repeat_their_source_are_flagged_and_come_back() {
        let text = StringArray::from(vec![
            Some("4242"),
            Some("0x1092"),
            None,
            Some("17"),
            Some("9"),
        ]);
        let source: ArrayRef = Arc::new(Int64Array::from(vec![
            Some(4242),
            Some(4242),
            Some(5),
            None,
            Some(9),
        ]));
        let (kept, flags) = fold(&text, &source).unwrap();
        let (kept, flags) = (kept.as_string::<i32>(), flags.as_boolean());
        assert_eq!(
            kept.iter().collect::<Vec<_>>(),
            [None, Some("0x1092"), None, Some("17"), None]
        );
        assert_eq!(
            flags.iter().collect::<Vec<_>>(),
            [Some(true), None, None, None, Some(true)]
        );
        assert_eq!(join(kept, &source, flags).unwrap(), text);
        // A key no row has: no flags to work out.
        let none = StringArray::from(vec![None::<&str>; 5]);
        let (kept, flags) = fold(&none, &source).unwrap();
        assert_eq!((kept.null_count(), flags.null_count()), (5, 5));
    }

    #[test]
    fn flag_columns_name_their_key_and_source_and_keys_are_never_sources() {
        let name = column_name("CommandLine", "process.command_line");
        assert_eq!(name, "repeats:CommandLine=process.command_line");
        assert_eq!(
            parse_column_name(&name),
            Some(("CommandLine", "process.command_line"))
        );
        assert_eq!(parse_column_name("fields.CommandLine"), None);
        for (key, _) in SAME_AS {
            assert!(
                SAME_AS.iter().all(|(_, s)| *s != format!("fields.{key}")),
                "{key} is a source"
            );
        }
        let err = join(
            &StringArray::from(vec!["a"]),
            &(Arc::new(StringArray::from(vec!["a", "b"])) as ArrayRef),
            &BooleanArray::from(vec![true]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("source of 2"), "{err}");
        // A flag over a source without a value: a damaged file, said so.
        let err = join(
            &StringArray::from(vec![None::<&str>]),
            &(Arc::new(StringArray::from(vec![None::<&str>])) as ArrayRef),
            &BooleanArray::from(vec![true]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("no value there"), "{err}");
    }
}
