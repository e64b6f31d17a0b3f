//! The layering rule: stage crates depend on `vedette-core` only, never on each other,
//! and `vedette-core` depends on no other Vedette crate.

use std::process::Command;

const STAGES: &[&str] = &[
    "vedette-ingest",
    "vedette-connectors",
    "vedette-detect",
    "vedette-storage",
];

fn metadata() -> serde_json::Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run cargo metadata: {e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("cargo metadata json: {e}"))
}

/// (package, every vedette-* crate it depends on, in any dependency kind).
fn vedette_dependencies(meta: &serde_json::Value) -> Vec<(String, Vec<String>)> {
    let packages = meta["packages"].as_array().cloned().unwrap_or_default();
    packages
        .iter()
        .map(|p| {
            let name = p["name"].as_str().unwrap_or_default().to_string();
            let deps = p["dependencies"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|d| d["name"].as_str())
                .filter(|d| d.starts_with("vedette"))
                .map(str::to_string)
                .collect();
            (name, deps)
        })
        .collect()
}

#[test]
fn stage_crates_depend_only_on_core() {
    let deps = vedette_dependencies(&metadata());
    let names: Vec<&str> = deps.iter().map(|(n, _)| n.as_str()).collect();
    for expected in STAGES.iter().chain(&["vedette-core", "vedette"]) {
        assert!(
            names.contains(expected),
            "workspace lacks {expected}: {names:?}"
        );
    }
    for (package, vedette_deps) in &deps {
        if STAGES.contains(&package.as_str()) {
            for dep in vedette_deps {
                assert_eq!(
                    dep, "vedette-core",
                    "{package} depends on {dep}; stage crates may depend only on vedette-core"
                );
            }
        }
        if package == "vedette-core" {
            assert!(
                vedette_deps.is_empty(),
                "vedette-core depends on {vedette_deps:?}"
            );
        }
    }
}

#[test]
fn every_member_inherits_the_workspace_lints() {
    let root = env!("CARGO_MANIFEST_DIR");
    for dir in ["", "core/", "ingest/", "connectors/", "detect/", "storage/"] {
        let manifest = std::fs::read_to_string(format!("{root}/{dir}Cargo.toml"))
            .unwrap_or_else(|e| panic!("{dir}Cargo.toml: {e}"));
        assert!(
            manifest.contains("[lints]\nworkspace = true"),
            "{dir}Cargo.toml does not inherit [workspace.lints]"
        );
    }
}
