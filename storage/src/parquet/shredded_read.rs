//! Queries over shredded files ([`super::shredding`]): `fields['CommandLine']` planned as
//! the column `"fields.CommandLine"`, and each file read as the table's schema says.
//!
//! - [`ShreddedFieldPlanner`] plans `fields['K']`, for a shredded key `K` of a table that
//!   has its column, as that column: one column read instead of the whole map.
//! - [`ShreddedFilesAdapter`] reads, file by file, `fields` as the file's map with the
//!   shredded columns put back ([`MergeFields`]), so a query of the whole map sees every
//!   key. (Every file is in the current layout: [`super::upgrade`].) A key stored as an
//!   offset into `message` ([`super::message_tail`]) is read through [`MessageTail`],
//!   both as its column and in the map; so is a key flagged as repeating another column
//!   ([`super::same_as`]), through [`SameAs`].

use std::sync::{Arc, OnceLock};

use arrow::array::{AsArray, StringArray};
use arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::common::{Column, DFSchema, Result, ScalarValue};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawFieldAccessExpr};
use datafusion::logical_expr::{
    ColumnarValue, Expr, GetFieldAccess, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use datafusion::physical_expr::expressions::{Column as ColumnExpr, Literal};
use datafusion::physical_expr::{PhysicalExpr, ScalarFunctionExpr};
use datafusion::physical_expr_adapter::{
    DefaultPhysicalExprAdapterFactory, PhysicalExprAdapter, PhysicalExprAdapterFactory,
};
use vedette_core::schema::{col, field_map_type};

use super::map_refs::{self, Sources};
use super::message_tail::{self, MessageTail, TAIL_KEYS};
use super::same_as::{self, SameAs};
use super::shredding::{column_name, is_shredded, unshred_map, PREFIX, SHREDDED_KEYS};

/// Plans `fields['K']` as the column `"fields.K"` where the table has it.
#[derive(Debug, Default)]
pub(crate) struct ShreddedFieldPlanner;

impl ExprPlanner for ShreddedFieldPlanner {
    fn plan_field_access(
        &self,
        expr: RawFieldAccessExpr,
        schema: &DFSchema,
    ) -> Result<PlannerResult<RawFieldAccessExpr>> {
        let key = match &expr.field_access {
            GetFieldAccess::NamedStructField {
                name: ScalarValue::Utf8(Some(k)),
            } => Some(k.as_str()),
            GetFieldAccess::ListIndex { key } => match key.as_ref() {
                Expr::Literal(ScalarValue::Utf8(Some(k)), _) => Some(k.as_str()),
                _ => None,
            },
            _ => None,
        };
        let (Expr::Column(map), Some(key)) = (&expr.expr, key) else {
            return Ok(PlannerResult::Original(expr));
        };
        if map.name != col::FIELDS || !SHREDDED_KEYS.contains(&key) {
            return Ok(PlannerResult::Original(expr));
        }
        let name = column_name(key);
        match schema.qualified_field_with_name(map.relation.as_ref(), &name) {
            Ok((qualifier, _)) => {
                // Named as the map lookup would be (`fields[CommandLine]`): answers keep
                // their column names, and `SELECT *, fields['K']` two distinct columns.
                let lookup = datafusion::functions::core::expr_fn::get_field(
                    expr.expr.clone(),
                    key.to_string(),
                );
                let alias = lookup.schema_name().to_string();
                let column = Expr::Column(Column::new(qualifier.cloned(), name));
                Ok(PlannerResult::Planned(column.alias(alias)))
            }
            Err(_) => Ok(PlannerResult::Original(expr)),
        }
    }
}

/// `vedette_merge_fields(escaped, fields, 'K1', "fields.K1", …, '\0source.ip',
/// "source.ip", …)`: a file's map with the shredded columns' values put back and, where
/// its keys are `escaped`, its references resolved from the source columns, in the event
/// schema's map type.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct MergeFields {
    signature: Signature,
}

impl MergeFields {
    /// The function, shared.
    pub(crate) fn udf() -> Arc<ScalarUDF> {
        static UDF: OnceLock<Arc<ScalarUDF>> = OnceLock::new();
        UDF.get_or_init(|| {
            Arc::new(ScalarUDF::new_from_impl(MergeFields {
                signature: Signature::variadic_any(Volatility::Immutable),
            }))
        })
        .clone()
    }
}

impl ScalarUDFImpl for MergeFields {
    fn name(&self) -> &str {
        "vedette_merge_fields"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types.get(1) {
            Some(DataType::Map(..)) => Ok(field_map_type()),
            other => Err(DataFusionError::Plan(format!(
                "vedette_merge_fields takes the fields map second, not {other:?}"
            ))),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let execution =
            |m: String| DataFusionError::Execution(format!("vedette_merge_fields: {m}"));
        let Some(([escaped, map], pairs)) = args.args.split_first_chunk::<2>() else {
            return Err(execution(
                "takes whether keys are escaped, then the map".into(),
            ));
        };
        let ColumnarValue::Scalar(ScalarValue::Boolean(Some(escaped))) = escaped else {
            return Err(execution("takes whether keys are escaped first".into()));
        };
        let map = map.to_array(rows)?;
        let map = map
            .as_map_opt()
            .ok_or_else(|| execution(format!("fields is {}, not a map", map.data_type())))?;
        let mut keys = Vec::with_capacity(pairs.len() / 2);
        let mut arrays = Vec::with_capacity(pairs.len() / 2);
        let mut sources = Sources::default();
        for pair in pairs.chunks(2) {
            let [ColumnarValue::Scalar(ScalarValue::Utf8(Some(key))), column] = pair else {
                return Err(execution(
                    "takes the map, then key names and their columns".into(),
                ));
            };
            match map_refs::parse_source_argument(key) {
                Some(source) => sources
                    .add(source, &column.to_array(rows)?)
                    .map_err(|e| execution(e.to_string()))?,
                None => {
                    keys.push(key.as_str());
                    arrays.push(column.to_array(rows)?);
                }
            }
        }
        let columns: Vec<&StringArray> = arrays
            .iter()
            .map(|c| {
                c.as_string_opt::<i32>()
                    .ok_or_else(|| execution(format!("a shredded column is {}", c.data_type())))
            })
            .collect::<Result<_>>()?;
        let merged = unshred_map(map, &keys, &columns, &sources, *escaped)
            .map_err(|e| execution(e.to_string()))?;
        Ok(ColumnarValue::Array(Arc::new(merged)))
    }
}

/// Creates a [`ShreddedFilesAdapter`] per file of the events table.
#[derive(Debug, Default)]
pub(crate) struct ShreddedFilesAdapterFactory;

impl PhysicalExprAdapterFactory for ShreddedFilesAdapterFactory {
    fn create(
        &self,
        logical_file_schema: SchemaRef,
        physical_file_schema: SchemaRef,
    ) -> Result<Arc<dyn PhysicalExprAdapter>> {
        let default = DefaultPhysicalExprAdapterFactory
            .create(logical_file_schema, physical_file_schema.clone())?;
        Ok(Arc::new(ShreddedFilesAdapter {
            physical: physical_file_schema,
            default,
        }))
    }
}

/// Rewrites the expressions of one file's scan (see the module doc), then lets
/// DataFusion's default adapter map the columns to the file's.
#[derive(Debug)]
pub(crate) struct ShreddedFilesAdapter {
    physical: SchemaRef,
    default: Arc<dyn PhysicalExprAdapter>,
}

impl ShreddedFilesAdapter {
    /// A column of this file, by name.
    fn file_column(&self, name: &str) -> Result<Arc<dyn PhysicalExpr>> {
        Ok(Arc::new(ColumnExpr::new(
            name,
            self.physical.index_of(name)?,
        )))
    }

    /// A function call typed against this file's schema.
    fn call(
        &self,
        fun: Arc<ScalarUDF>,
        args: Vec<Arc<dyn PhysicalExpr>>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        Ok(Arc::new(ScalarFunctionExpr::try_new(
            fun,
            args,
            &self.physical,
            Arc::new(ConfigOptions::default()),
        )?))
    }

    /// What reads shredded key `key`'s values from this file: its column, through
    /// [`MessageTail`] where the file stores some of them as offsets into `message`, and
    /// through [`SameAs`] where it flags some as repeating another column.
    fn key_values(&self, key: &str) -> Result<Arc<dyn PhysicalExpr>> {
        let mut values = self.file_column(&column_name(key))?;
        let starts = message_tail::column_name(key);
        if TAIL_KEYS.contains(&key) && self.physical.index_of(&starts).is_ok() {
            values = self.call(
                MessageTail::udf(),
                vec![
                    values,
                    self.file_column(col::MESSAGE)?,
                    self.file_column(&starts)?,
                ],
            )?;
        }
        if let Some((flags, source)) = same_as::flag_of(&self.physical, key) {
            values = self.call(
                SameAs::udf(),
                vec![values, self.file_column(source)?, self.file_column(flags)?],
            )?;
        }
        Ok(values)
    }

    /// Whether this file stores some of `key`'s values elsewhere than in its column.
    fn stores_elsewhere(&self, key: &str) -> bool {
        (TAIL_KEYS.contains(&key)
            && self
                .physical
                .index_of(&message_tail::column_name(key))
                .is_ok())
            || same_as::flag_of(&self.physical, key).is_some()
    }

    /// What reads the table's column `name` from this file: the map of a shredded file
    /// with its keys put back, a key's column with its values put back, any other
    /// column as DataFusion's adapter reads it.
    fn read_column(
        &self,
        expr: Arc<dyn PhysicalExpr>,
        name: &str,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        if name == col::FIELDS && is_shredded(&self.physical) {
            // The key columns the file has (all of them, unless it is of an older layout
            // that the store's open has not rewritten yet).
            let escaped = same_as::has_flags(&self.physical);
            let mut args: Vec<Arc<dyn PhysicalExpr>> = vec![
                Arc::new(Literal::new(ScalarValue::Boolean(Some(escaped)))),
                self.file_column(col::FIELDS)?,
            ];
            for field in self.physical.fields() {
                if let Some(key) = field.name().strip_prefix(PREFIX) {
                    args.push(Arc::new(Literal::new(ScalarValue::Utf8(Some(
                        key.to_string(),
                    )))));
                    args.push(self.key_values(key)?);
                }
            }
            // The columns the map's references name ([`super::map_refs`]).
            for source in map_refs::source_columns() {
                if self.physical.index_of(source).is_ok() {
                    args.push(Arc::new(Literal::new(ScalarValue::Utf8(Some(
                        map_refs::source_argument(source),
                    )))));
                    args.push(self.file_column(source)?);
                }
            }
            return self.call(MergeFields::udf(), args);
        }
        if let Some(key) = name.strip_prefix(PREFIX) {
            if self.physical.index_of(name).is_ok() && self.stores_elsewhere(key) {
                return self.key_values(key);
            }
        }
        self.default.rewrite(expr)
    }
}

impl PhysicalExprAdapter for ShreddedFilesAdapter {
    fn rewrite(&self, expr: Arc<dyn PhysicalExpr>) -> Result<Arc<dyn PhysicalExpr>> {
        // Column by column, bottom up: what replaces a column is not visited again.
        expr.transform_up(|e| {
            let Some(column) = e.downcast_ref::<ColumnExpr>() else {
                return Ok(Transformed::no(e));
            };
            let name = column.name().to_string();
            Ok(Transformed::yes(self.read_column(e, &name)?))
        })
        .data()
    }
}
