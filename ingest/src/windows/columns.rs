//! Windows fields to common columns, by channel and event id.

use std::borrow::Cow;

use vedette_core::event::{IntCol, Row, TextCol::*};

use crate::flatten::FieldSink;
use crate::limits::Limits;
use crate::record::{set_row_payload, set_row_time};
use crate::text::parse_int;
use crate::timestamp::{parse_datetime, ParsedTime};

/// The `event.dataset` of a Windows channel.
pub(crate) fn dataset_for_channel(channel: &str) -> &'static str {
    match channel {
        "Microsoft-Windows-Sysmon/Operational" => "windows.sysmon",
        "Security" => "windows.security",
        "System" => "windows.system",
        "Application" => "windows.application",
        "Microsoft-Windows-PowerShell/Operational"
        | "Windows PowerShell"
        | "PowerShellCore/Operational" => "windows.powershell",
        "Microsoft-Windows-Windows Defender/Operational" => "windows.defender",
        "Microsoft-Windows-TaskScheduler/Operational" => "windows.taskscheduler",
        "Microsoft-Windows-WMI-Activity/Operational" => "windows.wmi",
        "Linux-Sysmon/Operational" => "linux.sysmon",
        _ => "windows.eventlog",
    }
}

/// Splits `DOMAIN\user` into (user, domain).
fn split_user(text: &str) -> (&str, Option<&str>) {
    match text.split_once('\\') {
        Some((domain, user)) => (user, Some(domain)),
        None => (text, None),
    }
}

#[inline(always)]
fn first<'a>(f: &'a FieldSink<'_>, keys: &[&str]) -> Option<&'a str> {
    keys.iter()
        .find_map(|k| f.get(k))
        .filter(|v| !v.is_empty() && *v != "-")
}

/// `text` in lower case, borrowed when it already is.
pub(crate) fn lowercase(text: &str) -> Cow<'_, str> {
    if text.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(text.to_ascii_lowercase())
    } else {
        Cow::Borrowed(text)
    }
}

/// The Sysmon action and category of an event id.
fn sysmon_action(id: i64) -> Option<(&'static str, &'static str)> {
    Some(match id {
        1 => ("process-created", "process"),
        2 => ("file-creation-time-changed", "file"),
        3 => ("network-connection", "network"),
        5 => ("process-terminated", "process"),
        6 => ("driver-loaded", "driver"),
        7 => ("image-loaded", "library"),
        8 => ("create-remote-thread", "process"),
        9 => ("raw-access-read", "file"),
        10 => ("process-access", "process"),
        11 => ("file-created", "file"),
        12 => ("registry-object-added-or-deleted", "registry"),
        13 => ("registry-value-set", "registry"),
        14 => ("registry-object-renamed", "registry"),
        15 => ("file-stream-created", "file"),
        17 | 18 => ("pipe-event", "process"),
        19..=21 => ("wmi-event", "configuration"),
        22 => ("dns-query", "network"),
        23 => ("file-deleted", "file"),
        25 => ("process-tampering", "process"),
        26 => ("file-delete-detected", "file"),
        _ => return None,
    })
}

/// The Security-log action and category of an event id.
fn security_action(id: i64) -> Option<(&'static str, &'static str)> {
    Some(match id {
        1102 => ("audit-log-cleared", "configuration"),
        4624 => ("logged-in", "authentication"),
        4625 => ("logon-failed", "authentication"),
        4634 | 4647 => ("logged-out", "authentication"),
        4648 => ("logged-in-explicit", "authentication"),
        4672 => ("logged-in-special", "iam"),
        4688 => ("process-created", "process"),
        4689 => ("process-terminated", "process"),
        4697 => ("service-installed", "configuration"),
        4698 => ("scheduled-task-created", "configuration"),
        4720 => ("user-account-created", "iam"),
        4722 => ("user-account-enabled", "iam"),
        4724 => ("password-reset", "iam"),
        4726 => ("user-account-deleted", "iam"),
        4728 | 4732 | 4756 => ("group-member-added", "iam"),
        4768 => ("kerberos-tgt-requested", "authentication"),
        4769 => ("kerberos-service-ticket-requested", "authentication"),
        4771 => ("kerberos-preauth-failed", "authentication"),
        4776 => ("credential-validated", "authentication"),
        _ => return None,
    })
}

/// Fills the common columns from the flat Windows fields.
pub(crate) fn map_columns<'s>(row: &mut Row<'s>, f: &'s FieldSink<'_>, limits: &Limits) {
    let id = f.get("EventID").and_then(parse_int);
    row.set_opt(Code, first(f, &["EventID"]));
    row.set_opt(Provider, first(f, &["Provider_Name"]));
    row.set_opt(HostName, first(f, &["Computer", "Hostname"]));

    // Time: the record's own time first; Sysmon's UtcTime is UTC by definition.
    let time = [
        "TimeCreated_SystemTime",
        "TimeCreated",
        "@timestamp",
        "EventTime",
    ]
    .iter()
    .find_map(|k| f.get(k))
    .map(|t| (t, parse_datetime(t)))
    .or_else(|| {
        f.get("UtcTime").map(|t| {
            let parsed = parse_datetime(t).map(|p| ParsedTime {
                ms: p.ms,
                zone_missing: false,
            });
            (t, parsed)
        })
    });
    match time {
        Some((text, parsed)) => set_row_time(row, Some(text), parsed),
        None => set_row_time(row, None, None),
    }

    // Process, file, network and DNS columns: the same names across Sysmon (Windows
    // and Linux) and the Security log.
    row.set_opt(
        ProcessExecutable,
        first(
            f,
            &["Image", "NewProcessName", "SourceImage", "ProcessName"],
        ),
    );
    row.set_opt(ProcessCommandLine, first(f, &["CommandLine"]));
    row.set_opt(
        ParentExecutable,
        first(f, &["ParentImage", "ParentProcessName"]),
    );
    row.set_opt(ParentCommandLine, first(f, &["ParentCommandLine"]));
    row.set_int(
        IntCol::ProcessPid,
        first(
            f,
            &["ProcessId", "NewProcessId", "ProcessID", "SourceProcessId"],
        )
        .and_then(parse_int),
    );
    row.set_opt(
        FilePath,
        first(f, &["TargetFilename", "ImageLoaded", "Path", "ObjectName"]),
    );
    row.set_opt(DnsQuestionName, first(f, &["QueryName"]));
    row.set_opt(
        SourceIp,
        first(f, &["SourceIp", "IpAddress", "SourceAddress"]),
    );
    row.set_int(
        IntCol::SourcePort,
        first(f, &["SourcePort", "IpPort"])
            .and_then(parse_int)
            .filter(|p| *p > 0),
    );
    row.set_opt(DestinationIp, first(f, &["DestinationIp", "DestAddress"]));
    row.set_int(
        IntCol::DestinationPort,
        first(f, &["DestinationPort", "DestPort"]).and_then(parse_int),
    );
    row.set_opt(NetworkTransport, first(f, &["Protocol"]).map(lowercase));
    if let Some(hashes) = f.get("Hashes") {
        row.set_opt(
            FileSha256,
            hashes
                .split(',')
                .find_map(|h| h.trim().strip_prefix("SHA256="))
                .map(lowercase),
        );
    }

    // User: Sysmon `User` is DOMAIN\name; the Security log splits it, target first.
    if let Some(user) = first(f, &["User", "Detection User", "DetectionUser"]) {
        let (name, domain) = split_user(user);
        row.set(UserName, name);
        row.set_opt(UserDomain, domain);
    } else if let Some(name) = first(f, &["TargetUserName", "SubjectUserName", "UserID"]) {
        row.set(UserName, name);
        let domain_key = if f.get("TargetUserName").is_some() {
            "TargetDomainName"
        } else {
            "SubjectDomainName"
        };
        row.set_opt(UserDomain, first(f, &[domain_key]));
    }

    let channel = f
        .get("System_Channel")
        .or_else(|| f.get("Channel"))
        .unwrap_or_default();
    let dataset = dataset_for_channel(channel);
    let action = match (dataset, id) {
        ("windows.sysmon" | "linux.sysmon", Some(id)) => sysmon_action(id),
        ("windows.security", Some(id)) => security_action(id),
        ("windows.system", Some(7045)) => Some(("service-installed", "configuration")),
        ("windows.system", Some(104)) => Some(("log-cleared", "configuration")),
        ("windows.powershell", Some(4104)) => Some(("script-block-logged", "process")),
        ("windows.powershell", Some(4103)) => Some(("pipeline-executed", "process")),
        ("windows.defender", Some(1116 | 1117 | 1006 | 1015)) => {
            Some(("malware-detected", "malware"))
        }
        _ => None,
    };
    if let Some((action, category)) = action {
        row.set(Action, action);
        row.set(Category, category);
    }
    let defender_alert = row.text(Dataset) == Some("windows.defender")
        && matches!(id, Some(1116 | 1117 | 1006 | 1015));
    row.set(Kind, if defender_alert { "alert" } else { "event" });

    // Outcome: the audit keywords say success or failure for the Security log.
    let outcome = match f.get("Keywords") {
        Some(k) if k.eq_ignore_ascii_case("0x8010000000000000") => Some("failure"),
        Some(k) if k.eq_ignore_ascii_case("0x8020000000000000") => Some("success"),
        _ if id == Some(4625) || id == Some(4771) => Some("failure"),
        _ => None,
    };
    row.set_opt(Outcome, outcome);

    // PowerShell script blocks are content to scan.
    if let Some(script) = first(f, &["ScriptBlockText"]) {
        set_row_payload(row, script.as_bytes(), limits);
    }
    row.set_opt(Message, first(f, &["Message", "RenderingInfo_Message"]));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_split_on_backslash() {
        assert_eq!(split_user("CORP\\jdoe"), ("jdoe", Some("CORP")));
        assert_eq!(split_user("root"), ("root", None));
    }
}
