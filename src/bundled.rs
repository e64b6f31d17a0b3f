//! Rule data bundled into the binary from `rules/`, so `vedette run` works on a fresh
//! machine with no rule folder.

/// The Sigma log-source routing map (`rules/logsources/sigma.yml`).
pub(crate) const SIGMA_LOGSOURCES: &str = include_str!("../rules/logsources/sigma.yml");

/// The bundled Sigma rules (`rules/sigma/`): (path under `rules/sigma/`, text). A test
/// checks that every rule file there is listed.
pub(crate) const SIGMA_RULES: &[(&str, &str)] = &[
    (
        "cloud/aws_cloudtrail_logging_disabled.yml",
        include_str!("../rules/sigma/cloud/aws_cloudtrail_logging_disabled.yml"),
    ),
    (
        "cloud/aws_console_login_without_mfa.yml",
        include_str!("../rules/sigma/cloud/aws_console_login_without_mfa.yml"),
    ),
    (
        "cloud/okta_mfa_factor_removed.yml",
        include_str!("../rules/sigma/cloud/okta_mfa_factor_removed.yml"),
    ),
    (
        "linux/proc_creation_download_piped_to_shell.yml",
        include_str!("../rules/sigma/linux/proc_creation_download_piped_to_shell.yml"),
    ),
    (
        "linux/proc_creation_reverse_shell_dev_tcp.yml",
        include_str!("../rules/sigma/linux/proc_creation_reverse_shell_dev_tcp.yml"),
    ),
    (
        "windows/proc_creation_certutil_download.yml",
        include_str!("../rules/sigma/windows/proc_creation_certutil_download.yml"),
    ),
    (
        "windows/proc_creation_local_account_added.yml",
        include_str!("../rules/sigma/windows/proc_creation_local_account_added.yml"),
    ),
    (
        "windows/proc_creation_lsass_dump_comsvcs.yml",
        include_str!("../rules/sigma/windows/proc_creation_lsass_dump_comsvcs.yml"),
    ),
    (
        "windows/proc_creation_powershell_encoded_command.yml",
        include_str!("../rules/sigma/windows/proc_creation_powershell_encoded_command.yml"),
    ),
    (
        "windows/proc_creation_schtasks_from_user_writable_path.yml",
        include_str!("../rules/sigma/windows/proc_creation_schtasks_from_user_writable_path.yml"),
    ),
    (
        "windows/proc_creation_shadow_copy_deletion.yml",
        include_str!("../rules/sigma/windows/proc_creation_shadow_copy_deletion.yml"),
    ),
    (
        "windows/security_audit_log_cleared.yml",
        include_str!("../rules/sigma/windows/security_audit_log_cleared.yml"),
    ),
];

/// The bundled baselines (`rules/baselines/`): (file name, text). A test checks that
/// every definition there is listed.
pub(crate) const BASELINES: &[(&str, &str)] = &[
    (
        "logon_failures_per_user.yml",
        include_str!("../rules/baselines/logon_failures_per_user.yml"),
    ),
    (
        "new_parent_process_per_host.yml",
        include_str!("../rules/baselines/new_parent_process_per_host.yml"),
    ),
    (
        "rare_process_across_fleet.yml",
        include_str!("../rules/baselines/rare_process_across_fleet.yml"),
    ),
];

/// The bundled YARA rules (`rules/yara/`): (file name, text). A test checks that every
/// rule file there is listed.
pub(crate) const YARA_RULES: &[(&str, &str)] = &[
    (
        "eicar_test_file.yar",
        include_str!("../rules/yara/eicar_test_file.yar"),
    ),
    (
        "powershell_download_cradle.yar",
        include_str!("../rules/yara/powershell_download_cradle.yar"),
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn rule_files(dir: &std::path::Path, root: &std::path::Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                rule_files(&path, root, out);
            } else if path.extension().is_some_and(|e| e == "yml") {
                if let Ok(rel) = path.strip_prefix(root) {
                    out.push(rel.to_string_lossy().into_owned());
                }
            }
        }
    }

    #[test]
    fn every_bundled_sigma_rule_is_compiled_in() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/sigma");
        let mut on_disk = Vec::new();
        rule_files(&root, &root, &mut on_disk);
        on_disk.sort();
        let listed: Vec<String> = SIGMA_RULES.iter().map(|(p, _)| p.to_string()).collect();
        assert_eq!(
            listed, on_disk,
            "list every rules/sigma file in SIGMA_RULES"
        );
    }

    #[test]
    fn every_bundled_yara_rule_is_compiled_in_and_compiles() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/yara");
        let mut on_disk: Vec<String> = std::fs::read_dir(&root)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".yar"))
            .collect();
        on_disk.sort();
        let listed: Vec<String> = YARA_RULES.iter().map(|(p, _)| p.to_string()).collect();
        assert_eq!(listed, on_disk, "list every rules/yara file in YARA_RULES");
        let sources: Vec<(std::path::PathBuf, String)> = YARA_RULES
            .iter()
            .map(|(n, t)| (std::path::PathBuf::from(n), (*t).to_string()))
            .collect();
        let set = vedette_detect::yara::YaraSet::compile(&sources);
        assert!(set.errors.is_empty(), "{:?}", set.errors);
        assert_eq!(set.rule_count(), YARA_RULES.len());
    }

    #[test]
    fn every_bundled_baseline_is_compiled_in_and_valid() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/baselines");
        let mut on_disk = Vec::new();
        rule_files(&root, &root, &mut on_disk);
        on_disk.sort();
        let listed: Vec<String> = BASELINES.iter().map(|(p, _)| p.to_string()).collect();
        assert_eq!(
            listed, on_disk,
            "list every rules/baselines file in BASELINES"
        );
        let mut set = vedette_detect::baseline::BaselineSet::default();
        for (name, text) in BASELINES {
            set.add_text(std::path::Path::new(name), text);
        }
        assert!(set.errors.is_empty(), "{:?}", set.errors);
        assert_eq!(set.defs.len(), BASELINES.len());
    }
}
