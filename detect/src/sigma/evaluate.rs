//! Evaluates a compiled plan on one batch: route bitmaps, one matching pass per
//! field, then every routed rule's condition on bitmaps.

use arrow::array::{Array, RecordBatch};
use rustc_hash::FxHashMap;

use std::borrow::Cow;

use super::batch_fields::{BatchFields, Entry};
use super::bitset::Bitset;
use super::compile::{Plan, SlotMatcher};
use super::expr::eval;
use super::field_matcher::Scratch;
use crate::error::DetectError;

/// One rule matching one row.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RuleHit {
    /// Index into [`Plan::rules`].
    pub rule: u32,
    /// Row of the batch.
    pub row: u32,
    /// Field names and values the rule reads, as found in the row.
    pub matched: Vec<(String, String)>,
}

/// A row's routing values: dataset, channel, event code.
type RouteKey<'a> = (&'a str, Option<&'a [u8]>, Option<&'a str>);

/// Which rows each route accepts.
fn route_rows(plan: &Plan, fields: &BatchFields<'_>) -> Vec<Option<Bitset>> {
    let rows = fields.rows;
    let mut channel: Vec<Option<&[u8]>> = vec![None; rows];
    // Lowest precedence first, so `System_Channel` wins over `Channel`.
    for slot in plan.channel_slots.iter().rev() {
        if let Some(list) = fields.per_slot.get(*slot as usize) {
            for (row, value) in list {
                if let (Some(c), Some(v)) = (channel.get_mut(*row as usize), value) {
                    *c = Some(v);
                }
            }
        }
    }
    let mut out: Vec<Option<Bitset>> = vec![None; plan.routes.len()];
    let mut combos: FxHashMap<RouteKey<'_>, Vec<u32>> = FxHashMap::default();
    for (row, ch) in channel.iter().enumerate() {
        let dataset = if fields.dataset.is_valid(row) {
            fields.dataset.value(row)
        } else {
            ""
        };
        let code = fields.code.is_valid(row).then(|| fields.code.value(row));
        let accepting = combos.entry((dataset, *ch, code)).or_insert_with(|| {
            let ch = ch.and_then(|c| std::str::from_utf8(c).ok());
            plan.routes
                .iter()
                .enumerate()
                .filter(|(_, r)| r.accepts(dataset, ch, code))
                .map(|(i, _)| i as u32)
                .collect()
        });
        for r in accepting.iter() {
            if let Some(slot) = out.get_mut(*r as usize) {
                slot.get_or_insert_with(|| Bitset::empty(rows)).set(row);
            }
        }
    }
    out
}

/// The rows taken in by one of the routes `readers`, or `None` if there are none.
fn readers_rows(readers: &[u32], routes: &[Option<Bitset>], rows: usize) -> Option<Bitset> {
    let mut mask: Option<Bitset> = None;
    for r in readers {
        if let Some(Some(taken)) = routes.get(*r as usize) {
            mask.get_or_insert_with(|| Bitset::empty(rows))
                .or_with(taken);
        }
    }
    mask
}

/// Every (rule, row) match of `plan` in `batch`, sorted by row then rule.
pub(crate) fn evaluate(plan: &Plan, batch: &RecordBatch) -> Result<Vec<RuleHit>, DetectError> {
    let fields = BatchFields::extract(batch, &plan.slots)?;
    let rows = fields.rows;
    if rows == 0 {
        return Ok(Vec::new());
    }
    let routes = route_rows(plan, &fields);
    let mut hits: Vec<Option<Bitset>> = vec![None; plan.test_count];
    let keywords = plan.slots.keywords();
    let mut scratch = Scratch::default();
    for SlotMatcher {
        slot,
        readers,
        matcher,
    } in &plan.matchers
    {
        // Rows outside every route that reads the tests: no rule looks at them
        // there (each rule's result is cut to its route's rows).
        let Some(mask) = readers_rows(readers, &routes, rows) else {
            continue;
        };
        if Some(*slot) == keywords {
            matcher.run_keyword_rows(&mask, &fields, &mut hits, &mut scratch);
            continue;
        }
        let all: &[Entry<'_>] = fields
            .per_slot
            .get(*slot as usize)
            .map_or(&[], Vec::as_slice);
        let entries: Cow<'_, [Entry<'_>]> = if mask.count() == rows {
            Cow::Borrowed(all)
        } else {
            Cow::Owned(
                all.iter()
                    .filter(|(row, _)| mask.get(*row as usize))
                    .copied()
                    .collect(),
            )
        };
        if !entries.is_empty() || matcher.has_absence_tests() {
            matcher.run(&entries, &fields, &mut hits, &mut scratch);
        }
    }
    let mut out = Vec::new();
    for rr in &plan.rule_routes {
        let Some(Some(route)) = routes.get(rr.route as usize) else {
            continue;
        };
        let result = eval(&rr.expr, &hits, rows);
        if result.is_none() {
            continue;
        }
        let mut matched_rows = result.into_bitset(rows);
        matched_rows.and_with(route);
        for row in matched_rows.rows() {
            let row = row as u32;
            let matched = rr
                .slots
                .iter()
                .filter_map(|s| {
                    fields.value(*s, row).map(|v| {
                        (
                            plan.slots.name(*s).to_owned(),
                            String::from_utf8_lossy(v).into_owned(),
                        )
                    })
                })
                .collect();
            out.push(RuleHit {
                rule: rr.rule,
                row,
                matched,
            });
        }
    }
    out.sort_by_key(|h| (h.row, h.rule));
    out.dedup_by_key(|h| (h.row, h.rule));
    Ok(out)
}

/// For each row of `batch`, the rules whose log source takes it in, ascending.
pub(crate) fn routed_rules(plan: &Plan, batch: &RecordBatch) -> Result<Vec<Vec<u32>>, DetectError> {
    let fields = BatchFields::extract(batch, &plan.slots)?;
    let routes = route_rows(plan, &fields);
    let mut out = vec![Vec::new(); fields.rows];
    for rr in &plan.rule_routes {
        if let Some(Some(rows)) = routes.get(rr.route as usize) {
            for row in rows.rows() {
                if let Some(list) = out.get_mut(row) {
                    list.push(rr.rule);
                }
            }
        }
    }
    for list in &mut out {
        list.sort_unstable();
        list.dedup();
    }
    Ok(out)
}
