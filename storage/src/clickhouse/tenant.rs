//! Queries confined to one tenant on ClickHouse.
//!
//! Each tenant gets a database of its own (`<database>_t_<hex of tenant>`) holding one
//! view per table: `SELECT * FROM <database>.<table> WHERE tenant = '<tenant>'`. A
//! tenant's query runs with that database as its default, so `events` means the view;
//! before it runs, its syntax tree is checked so that it can reach nothing else: one
//! `SELECT`, tables named without a database, no table functions, no functions that
//! read other tables (`dictGet`, `joinGet`, ...), no `SETTINGS`. What the parser does
//! not understand is refused: this path fails closed.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{Expr, Statement, TableFactor, Visit, Visitor};
use datafusion::sql::sqlparser::dialect::ClickHouseDialect;
use datafusion::sql::sqlparser::parser::Parser;
use vedette_core::traits::Table;
use vedette_core::CoreError;

/// Functions that read tables or server state by name.
const FORBIDDEN_FUNCTION_PREFIXES: &[&str] = &[
    "dictget",
    "dicthas",
    "dictisin",
    "joinget",
    "hascolumnintable",
    "getsetting",
    "getserverport",
    "filesystem",
    "currentdatabase",
];

/// The database that holds `tenant`'s views.
pub(crate) fn tenant_database(database: &str, tenant: &str) -> String {
    let hex: String = tenant.bytes().map(|b| format!("{b:02x}")).collect();
    format!("{database}_t_{hex}")
}

/// The statements that create `tenant`'s database and views.
pub(crate) fn view_statements(database: &str, tenant: &str) -> Vec<String> {
    let scoped = tenant_database(database, tenant);
    let literal = tenant.replace('\\', "\\\\").replace('\'', "\\'");
    let mut out = vec![format!("CREATE DATABASE IF NOT EXISTS {scoped}")];
    for table in Table::ALL {
        let name = table.name();
        out.push(format!(
            "CREATE VIEW IF NOT EXISTS {scoped}.{name} AS \
             SELECT * FROM {database}.{name} WHERE tenant = '{literal}'"
        ));
    }
    out
}

struct Guard {
    problem: Option<String>,
}

impl Guard {
    fn refuse(&mut self, why: String) -> ControlFlow<()> {
        self.problem = Some(why);
        ControlFlow::Break(())
    }
}

impl Visitor for Guard {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
        match factor {
            TableFactor::Table { name, args, .. } => {
                if args.is_some() {
                    return self.refuse(format!("table function `{name}`"));
                }
                if name.0.len() != 1 {
                    return self.refuse(format!(
                        "table `{name}`: name the tables events, alerts and dead_letters \
                         without a database"
                    ));
                }
                ControlFlow::Continue(())
            }
            TableFactor::Derived { .. } | TableFactor::NestedJoin { .. } => {
                ControlFlow::Continue(())
            }
            other => self.refuse(format!("the table expression `{other}`")),
        }
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        if let Expr::Function(f) = expr {
            let name = f.name.to_string().to_ascii_lowercase();
            if FORBIDDEN_FUNCTION_PREFIXES
                .iter()
                .any(|p| name.trim_matches('`').starts_with(p))
            {
                return self.refuse(format!("function `{}`", f.name));
            }
        }
        ControlFlow::Continue(())
    }
}

/// Checks that a tenant's query can reach only its own views.
pub(crate) fn check_tenant_query(sql: &str) -> Result<(), CoreError> {
    let refused = |why: String| {
        CoreError::BadInput(format!("query: not available to a tenant's token: {why}"))
    };
    let statements = Parser::parse_sql(&ClickHouseDialect {}, sql)
        .map_err(|e| refused(format!("the query could not be checked ({e})")))?;
    let [statement] = statements.as_slice() else {
        return Err(refused("send exactly one statement".into()));
    };
    let Statement::Query(query) = statement else {
        return Err(refused("only SELECT queries".into()));
    };
    if query.settings.is_some() || query.format_clause.is_some() {
        return Err(refused("SETTINGS and FORMAT clauses".into()));
    }
    let mut guard = Guard { problem: None };
    let _ = statement.visit(&mut guard);
    match guard.problem {
        Some(why) => Err(refused(why)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_selects_over_the_tables_pass() {
        for sql in [
            "SELECT count() FROM events",
            "SELECT host.name FROM events WHERE fields['CommandLine'] LIKE '%x%' LIMIT 5",
            "WITH hits AS (SELECT rule_id FROM alerts) SELECT count(*) FROM hits",
            "SELECT a.rule_id FROM alerts a JOIN (SELECT * FROM events) e ON a.tenant = e.tenant",
        ] {
            assert!(check_tenant_query(sql).is_ok(), "{sql}");
        }
    }

    #[test]
    fn everything_that_leaves_the_views_is_refused() {
        for sql in [
            "SELECT * FROM vedette.events",
            "SELECT * FROM system.tables",
            "SELECT * FROM events UNION ALL SELECT * FROM other.events",
            "SELECT * FROM remote('h', db.events)",
            "SELECT * FROM url('http://x', CSV, 'a String')",
            "SELECT * FROM (SELECT * FROM system.users)",
            "SELECT dictGet('d', 'a', 1)",
            "SELECT * FROM events SETTINGS readonly = 0",
            "SELECT 1; SELECT 2",
            "SHOW TABLES",
            "INSERT INTO events VALUES (1)",
            "SELECT * FROM events WHERE x IN (SELECT y FROM db.t)",
            "not sql at all",
        ] {
            assert!(check_tenant_query(sql).is_err(), "{sql}");
        }
    }

    #[test]
    fn tenant_databases_are_safe_names() {
        assert_eq!(tenant_database("vedette", "a-b"), "vedette_t_612d62");
        let v = view_statements("vedette", "x'y");
        assert!(v[1].contains("WHERE tenant = 'x\\'y'"), "{}", v[1]);
        assert_eq!(v.len(), 1 + Table::ALL.len());
    }
}
