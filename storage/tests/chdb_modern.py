"""Runs Vedette's modern ClickHouse schema and example queries in chDB (ClickHouse 26.x
in-process). Called by queries_doc.rs with a manifest (JSON): the DDL statements, the
RowBinary files to load (with their column lists) and the queries. Fails (exit 1) on
the first statement that the engine refuses or query that returns no rows; exit 2 when
chDB is not installed."""

import json
import sys

try:
    from chdb import session
except ImportError:
    print("chdb_modern.py: the chdb-core package is missing: run scripts/ci/install.sh "
          "(or pip install chdb-core) and point VEDETTE_PYTHON at that Python", file=sys.stderr)
    sys.exit(2)


def main(manifest_path):
    with open(manifest_path, encoding="utf-8") as f:
        manifest = json.load(f)
    s = session.Session()
    print("engine:", s.query("SELECT version()", "TSV").bytes().decode().strip())
    for sql in manifest["statements"]:
        s.query(sql)
    database = manifest["database"]
    for insert in manifest["inserts"]:
        path = insert["file"].replace("'", "\\'")
        structure = insert["structure"].replace("'", "\\'")
        s.query(
            f"INSERT INTO `{database}`.`{insert['table']}` "
            f"SELECT * FROM file('{path}', 'RowBinary', '{structure}')"
        )
        count = s.query(f"SELECT count() FROM `{database}`.`{insert['table']}`", "TSV")
        print(f"loaded {insert['table']}: {count.bytes().decode().strip()} rows")
    s.query(f"USE `{database}`")
    for sql in manifest["queries"]:
        result = s.query(sql, "TSVWithNames").bytes().decode()
        rows = result.strip().split("\n")[1:]
        if not rows:
            print(f"no rows from:\n{sql}", file=sys.stderr)
            return 1
        print(f"{len(rows)} rows from: {sql.splitlines()[0]} ...")
    print("all queries returned rows")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
