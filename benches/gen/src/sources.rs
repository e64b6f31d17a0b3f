//! The log sources of the stream and their benign events, each in the shape its real
//! source ships (the forms of the corpus samples in `../shared/corpora/logs/`): Sysmon,
//! Security and PowerShell events as flat Windows JSON, Linux Sysmon JSON, auditd
//! records, syslog (RFC 5424 and 3164), CEF and PAN-OS CSV over syslog, CloudTrail and
//! Okta System Log JSON.

use serde_json::{json, Value};

use crate::rng::Rng;
use crate::world::{format_ms, iso_ms, World};

/// A log source of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    /// Sysmon (process creation, network connection, file creation), Winlogbeat-flat JSON.
    Sysmon,
    /// Windows Security log (logons, failed logons, logoffs, process creation).
    Security,
    /// PowerShell script block logging (4104).
    PowerShell,
    /// Sysmon for Linux process creations.
    LinuxSysmon,
    /// Linux audit (SYSCALL and EXECVE records of one exec).
    Auditd,
    /// Linux syslog: sshd, sudo and cron, RFC 5424 and RFC 3164.
    Syslog,
    /// A firewall's CEF over syslog.
    Cef,
    /// Palo Alto PAN-OS TRAFFIC logs over syslog.
    PanOs,
    /// AWS CloudTrail records, one per line.
    CloudTrail,
    /// Okta System Log events.
    Okta,
}

/// How a source reaches the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// `POST /v1/ingest?format=NAME`.
    Http(&'static str),
    /// Lines on a syslog TCP connection.
    Syslog,
}

impl Source {
    /// Every source, in a fixed order.
    pub const ALL: [Source; 10] = [
        Source::Sysmon,
        Source::Security,
        Source::PowerShell,
        Source::LinuxSysmon,
        Source::Auditd,
        Source::Syslog,
        Source::Cef,
        Source::PanOs,
        Source::CloudTrail,
        Source::Okta,
    ];

    /// The source's name in scenario files and file names.
    pub fn name(self) -> &'static str {
        match self {
            Source::Sysmon => "sysmon",
            Source::Security => "security",
            Source::PowerShell => "powershell",
            Source::LinuxSysmon => "linux_sysmon",
            Source::Auditd => "auditd",
            Source::Syslog => "syslog",
            Source::Cef => "cef",
            Source::PanOs => "paloalto",
            Source::CloudTrail => "cloudtrail",
            Source::Okta => "okta",
        }
    }

    /// How its events are sent.
    pub fn transport(self) -> Transport {
        match self {
            Source::Sysmon | Source::Security | Source::PowerShell | Source::LinuxSysmon => {
                Transport::Http("windows-json")
            }
            Source::Auditd => Transport::Http("auditd"),
            Source::CloudTrail => Transport::Http("cloudtrail"),
            Source::Okta => Transport::Http("okta"),
            Source::Syslog | Source::Cef | Source::PanOs => Transport::Syslog,
        }
    }

    /// Whether its events are JSON objects (and can carry Sigma log-source fields).
    pub fn is_json(self) -> bool {
        matches!(self.transport(), Transport::Http(f) if f != "auditd")
    }
}

/// What a benign event needs besides the randomness: where it sits in the stream.
#[derive(Debug, Clone, Copy)]
pub struct Slot {
    /// Position in the stream (unique; record ids derive from it).
    pub index: u64,
    /// Event time, Unix milliseconds.
    pub time_ms: i64,
}

/// Programs of the benign process creations on Windows, with their command lines
/// (`{u}` the user, `{n}` a number).
const WINDOWS_PROGRAMS: &[(&str, &str)] = &[
    (
        r"C:\Program Files\Google\Chrome\Application\chrome.exe",
        r#""C:\Program Files\Google\Chrome\Application\chrome.exe" --type=renderer --renderer-client-id={n} --field-trial-handle=1736,i,{n}"#,
    ),
    (
        r"C:\Program Files\Mozilla Firefox\firefox.exe",
        r#""C:\Program Files\Mozilla Firefox\firefox.exe" -contentproc -childID {n} -isForBrowser"#,
    ),
    (
        r"C:\Program Files\Microsoft Office\root\Office16\OUTLOOK.EXE",
        r#""C:\Program Files\Microsoft Office\root\Office16\OUTLOOK.EXE" /recycle"#,
    ),
    (
        r"C:\Program Files\Microsoft Office\root\Office16\WINWORD.EXE",
        r#""C:\Program Files\Microsoft Office\root\Office16\WINWORD.EXE" /n "C:\Users\{u}\Documents\minutes-{n}.docx""#,
    ),
    (
        r"C:\Program Files\Microsoft Office\root\Office16\EXCEL.EXE",
        r#""C:\Program Files\Microsoft Office\root\Office16\EXCEL.EXE" "C:\Users\{u}\Documents\budget-{n}.xlsx""#,
    ),
    (
        r"C:\Windows\System32\notepad.exe",
        r#""C:\Windows\System32\notepad.exe" C:\Users\{u}\Documents\notes-{n}.txt"#,
    ),
    (
        r"C:\Windows\System32\conhost.exe",
        r"\??\C:\Windows\system32\conhost.exe 0xffffffff -ForceV1",
    ),
    (
        r"C:\Windows\System32\RuntimeBroker.exe",
        r"C:\Windows\System32\RuntimeBroker.exe -Embedding",
    ),
    (
        r"C:\Windows\System32\taskhostw.exe",
        r"taskhostw.exe Install $(Arg0)",
    ),
    (
        r"C:\Windows\System32\SearchProtocolHost.exe",
        r#""C:\Windows\system32\SearchProtocolHost.exe" Global\UsGthrFltPipeMssGthrPipe{n}_ Global\UsGthrCtrlFltPipeMssGthrPipe{n} 1 -2147483646 "Software\Microsoft\Windows Search""#,
    ),
    (
        r"C:\Program Files\Microsoft VS Code\Code.exe",
        r#""C:\Program Files\Microsoft VS Code\Code.exe" --type=utility --utility-sub-type=node.mojom.NodeService"#,
    ),
    (
        r"C:\Program Files\Slack\slack.exe",
        r#""C:\Program Files\Slack\slack.exe" --type=renderer --enable-sandbox --renderer-client-id={n}"#,
    ),
    (
        r"C:\Program Files\7-Zip\7zFM.exe",
        r#""C:\Program Files\7-Zip\7zFM.exe" "C:\Users\{u}\Downloads\logs-{n}.zip""#,
    ),
    (
        r"C:\Windows\System32\svchost.exe",
        r"C:\Windows\system32\svchost.exe -k netsvcs -p -s Schedule",
    ),
    (
        r"C:\Windows\System32\svchost.exe",
        r"C:\Windows\system32\svchost.exe -k LocalServiceNetworkRestricted -p",
    ),
    (
        r"C:\Windows\System32\dllhost.exe",
        r"C:\Windows\system32\DllHost.exe /Processid:{3EB3C877-1F16-487C-9050-104DBCD66683}",
    ),
    (
        r"C:\Windows\System32\backgroundTaskHost.exe",
        r#""C:\Windows\system32\backgroundTaskHost.exe" -ServerName:BackgroundTaskHost.WebAccountProvider"#,
    ),
    (
        r"C:\Program Files\Windows Defender\MpCmdRun.exe",
        r#""C:\Program Files\Windows Defender\MpCmdRun.exe" -wdenable"#,
    ),
    (
        r"C:\Windows\System32\spoolsv.exe",
        r"C:\Windows\System32\spoolsv.exe",
    ),
    (
        r"C:\Program Files\Microsoft\Edge\Application\msedge.exe",
        r#""C:\Program Files\Microsoft\Edge\Application\msedge.exe" --type=gpu-process --gpu-preferences={n}"#,
    ),
];

/// PowerShell script blocks an administrator or a logon script runs.
const SCRIPT_BLOCKS: &[&str] = &[
    "Get-Process | Where-Object { $_.WorkingSet64 -gt 500MB } | Select-Object Name, Id",
    "Get-Service -Name Spooler, BITS | Format-Table -AutoSize",
    "Get-ChildItem -Path C:\\Users\\{u}\\Documents -Filter *.docx | Measure-Object",
    "Import-Module -Name PSReadLine",
    "$env:PSModulePath -split ';'",
    "Get-ItemProperty -Path HKLM:\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion | Select-Object ProgramFilesDir",
    "Test-NetConnection -ComputerName fileserver-{n}.corp.example -Port 445",
    "Get-EventLog -LogName System -Newest 20",
    "prompt",
    "Get-Date -Format o",
];

/// Linux commands of the benign execs: (executable, arguments).
const LINUX_COMMANDS: &[(&str, &[&str])] = &[
    ("/usr/bin/ls", &["ls", "-la", "/var/log"]),
    ("/usr/bin/cat", &["cat", "/etc/hostname"]),
    ("/usr/bin/systemctl", &["systemctl", "status", "nginx"]),
    ("/usr/bin/ps", &["ps", "aux"]),
    ("/usr/bin/df", &["df", "-h"]),
    ("/usr/bin/grep", &["grep", "-r", "error", "/var/log/app"]),
    ("/usr/bin/python3", &["python3", "/opt/app/job.py", "--run"]),
    ("/usr/bin/tar", &["tar", "czf", "/backup/etc.tgz", "/etc"]),
    (
        "/usr/bin/rsync",
        &["rsync", "-a", "/srv/data/", "backup-01:/srv/data/"],
    ),
    (
        "/usr/bin/journalctl",
        &["journalctl", "-u", "sshd", "--since", "today"],
    ),
];

/// Cloud API calls: (event source, event name, read only).
const AWS_CALLS: &[(&str, &str, bool)] = &[
    ("ec2.amazonaws.com", "DescribeInstances", true),
    ("s3.amazonaws.com", "GetObject", true),
    ("s3.amazonaws.com", "PutObject", false),
    ("sts.amazonaws.com", "AssumeRole", true),
    ("iam.amazonaws.com", "ListUsers", true),
    ("kms.amazonaws.com", "Decrypt", true),
    ("lambda.amazonaws.com", "Invoke", false),
    ("logs.amazonaws.com", "PutLogEvents", false),
];

/// Okta event types of a normal day.
const OKTA_EVENTS: &[(&str, &str)] = &[
    ("user.session.start", "User login to Okta"),
    ("user.authentication.sso", "User single sign on to app"),
    (
        "user.authentication.auth_via_mfa",
        "Authentication of user via MFA",
    ),
    ("policy.evaluate_sign_on", "Evaluation of sign-on policy"),
    ("user.session.end", "User logout from Okta"),
    (
        "app.oauth2.token.grant.access_token",
        "OAuth2 access token is granted",
    ),
];

/// Renders a benign event of `source` at `slot`: the record's text without its newline
/// (several lines for auditd), and the Windows host it is about, if any.
pub fn benign(source: Source, world: &World, rng: &mut Rng, slot: Slot) -> (String, Option<u32>) {
    match source {
        Source::Sysmon => sysmon(world, rng, slot),
        Source::Security => (security(world, rng, slot), None),
        Source::PowerShell => (powershell(world, rng, slot), None),
        Source::LinuxSysmon => (linux_sysmon(world, rng, slot), None),
        Source::Auditd => (auditd(world, rng, slot), None),
        Source::Syslog => (syslog(world, rng, slot), None),
        Source::Cef => (cef(world, rng, slot), None),
        Source::PanOs => (panos(world, rng, slot), None),
        Source::CloudTrail => (cloudtrail(world, rng, slot), None),
        Source::Okta => (okta(world, rng, slot), None),
    }
}

fn fill(template: &str, user: &str, n: u64) -> String {
    template.replace("{u}", user).replace("{n}", &n.to_string())
}

fn windows_host(world: &World, rng: &mut Rng) -> u32 {
    rng.below(u64::from(world.windows_hosts.max(1))) as u32
}

fn internal_ip(rng: &mut Rng) -> String {
    format!(
        "10.{}.{}.{}",
        rng.below(8),
        rng.below(256),
        1 + rng.below(254)
    )
}

fn external_ip(rng: &mut Rng) -> String {
    let net = rng.pick(&["198.51.100", "203.0.113", "192.0.2"]);
    format!("{net}.{}", 1 + rng.below(254))
}

/// A flat Windows event: the system fields every record carries, then `data`.
pub fn windows_event(
    event_id: u32,
    channel: &str,
    provider: &str,
    computer: &str,
    slot: Slot,
    data: Value,
) -> String {
    let mut event = json!({
        "EventID": event_id,
        "Channel": channel,
        "Provider_Name": provider,
        "Computer": computer,
        "TimeCreated_SystemTime": iso_ms(slot.time_ms),
        "EventRecordID": slot.index,
    });
    if let (Some(e), Value::Object(d)) = (event.as_object_mut(), data) {
        e.extend(d);
    }
    event.to_string()
}

/// The SHA-256 (upper-case hex) of program `image` as installed on Windows host `host`:
/// one digest per program and version, as on a real fleet, where a third of the hosts
/// already run the next version. (A fresh random digest per event would make the
/// stored hashes the least compressible column, which real ones are not.)
pub fn binary_sha256(image: &str, host: u32) -> String {
    let seed = image.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let mut digest = Rng::new(seed ^ u64::from(host.is_multiple_of(3)));
    (0..4)
        .map(|_| format!("{:016X}", digest.next_u64()))
        .collect()
}

/// The provider and channel of Sysmon on Windows.
pub const SYSMON: (&str, &str) = (
    "Microsoft-Windows-Sysmon",
    "Microsoft-Windows-Sysmon/Operational",
);

/// The parent of a benign process on Windows host `host`: one per host, so a host's
/// parents are all learned in its first days.
pub fn usual_parent(host: u32) -> &'static str {
    if World::is_server(host) {
        r"C:\Windows\System32\services.exe"
    } else {
        r"C:\Windows\explorer.exe"
    }
}

fn sysmon(world: &World, rng: &mut Rng, slot: Slot) -> (String, Option<u32>) {
    let host = windows_host(world, rng);
    let computer = World::windows_host(host);
    let user = World::user(rng.below(u64::from(world.users.max(1))) as u32);
    let (image, command) = *rng.pick(WINDOWS_PROGRAMS);
    let n = rng.below(100_000);
    let pid = 1000 + rng.below(60_000);
    let kind = rng.below(100);
    let (id, data) = if kind < 65 {
        (
            1,
            json!({
                "ProcessId": pid,
                "Image": image,
                "CommandLine": fill(command, &user, n),
                "CurrentDirectory": format!(r"C:\Users\{user}\"),
                "ParentImage": usual_parent(host),
                "ParentProcessId": 1000 + rng.below(60_000),
                "User": format!(r"CORP\{user}"),
                "IntegrityLevel": "Medium",
                "LogonId": format!("0x{:x}", 0x3e7 + rng.below(1 << 20)),
                "Hashes": format!("SHA256={}", binary_sha256(image, host)),
            }),
        )
    } else if kind < 90 {
        (
            3,
            json!({
                "ProcessId": pid,
                "Image": image,
                "User": format!(r"CORP\{user}"),
                "Protocol": "tcp",
                "Initiated": "true",
                "SourceIp": internal_ip(rng),
                "SourcePort": 49152 + rng.below(16_000),
                "DestinationIp": external_ip(rng),
                "DestinationPort": *rng.pick(&[443u64, 443, 443, 80, 53]),
                "DestinationHostname": format!("cdn-{}.example.net", rng.below(50)),
            }),
        )
    } else {
        (
            11,
            json!({
                "ProcessId": pid,
                "Image": image,
                "TargetFilename": format!(r"C:\Users\{user}\Downloads\report-{n}.pdf"),
                "User": format!(r"CORP\{user}"),
            }),
        )
    };
    let text = windows_event(id, SYSMON.1, SYSMON.0, &computer, slot, data);
    (text, (id == 1).then_some(host))
}

fn security(world: &World, rng: &mut Rng, slot: Slot) -> String {
    let computer = World::windows_host(windows_host(world, rng));
    let user = World::user(rng.below(u64::from(world.users.max(1))) as u32);
    let kind = rng.below(100);
    let (id, data) = if kind < 55 {
        (
            4624,
            json!({
                "SubjectUserSid": "S-1-5-18",
                "SubjectUserName": computer.split('.').next().unwrap_or_default().to_uppercase() + "$",
                "SubjectDomainName": "CORP",
                "TargetUserName": user,
                "TargetDomainName": "CORP",
                "TargetLogonId": format!("0x{:x}", rng.below(1 << 24)),
                "LogonType": *rng.pick(&[2u64, 3, 3, 3, 10]),
                "LogonProcessName": "Kerberos",
                "AuthenticationPackageName": "Kerberos",
                "WorkstationName": "-",
                "IpAddress": internal_ip(rng),
                "IpPort": "0",
            }),
        )
    } else if kind < 70 {
        (
            4634,
            json!({
                "TargetUserName": user,
                "TargetDomainName": "CORP",
                "TargetLogonId": format!("0x{:x}", rng.below(1 << 24)),
                "LogonType": 3,
            }),
        )
    } else if kind < 90 {
        let (image, command) = *rng.pick(WINDOWS_PROGRAMS);
        (
            4688,
            json!({
                "SubjectUserName": user,
                "SubjectDomainName": "CORP",
                "NewProcessId": format!("0x{:x}", 1000 + rng.below(60_000)),
                "NewProcessName": image,
                "CommandLine": fill(command, &user, rng.below(100_000)),
                "ParentProcessName": r"C:\Windows\explorer.exe",
                "TokenElevationType": "%%1936",
                "MandatoryLabel": "S-1-16-8192",
            }),
        )
    } else {
        (4625, failed_logon(&user, &internal_ip(rng)))
    };
    windows_event(
        id,
        "Security",
        "Microsoft-Windows-Security-Auditing",
        &computer,
        slot,
        data,
    )
}

/// The data of a failed network logon (4625) of `user` from `ip`.
pub fn failed_logon(user: &str, ip: &str) -> Value {
    json!({
        "SubjectUserSid": "S-1-0-0",
        "TargetUserName": user,
        "TargetDomainName": "CORP",
        "Status": "0xc000006d",
        "SubStatus": "0xc000006a",
        "FailureReason": "%%2313",
        "LogonType": 3,
        "LogonProcessName": "NtLmSsp",
        "AuthenticationPackageName": "NTLM",
        "WorkstationName": "-",
        "IpAddress": ip,
        "IpPort": "0",
    })
}

/// The provider and channel of PowerShell script block logging.
pub const POWERSHELL: (&str, &str) = (
    "Microsoft-Windows-PowerShell",
    "Microsoft-Windows-PowerShell/Operational",
);

fn powershell(world: &World, rng: &mut Rng, slot: Slot) -> String {
    let computer = World::windows_host(windows_host(world, rng));
    let user = World::user(rng.below(u64::from(world.users.max(1))) as u32);
    let block = *rng.pick(SCRIPT_BLOCKS);
    let text = fill(block, &user, rng.below(100));
    windows_event(
        4104,
        POWERSHELL.1,
        POWERSHELL.0,
        &computer,
        slot,
        script_block(&text, rng),
    )
}

/// The data of a 4104 script block.
pub fn script_block(text: &str, rng: &mut Rng) -> Value {
    json!({
        "MessageNumber": 1,
        "MessageTotal": 1,
        "ScriptBlockText": text,
        "ScriptBlockId": format!("{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}", rng.next_u64() as u32, rng.below(1 << 16), rng.below(1 << 12), rng.below(1 << 12), rng.below(1 << 48)),
        "Path": "",
    })
}

/// The provider and channel of Sysmon for Linux.
pub const LINUX_SYSMON: (&str, &str) = ("Linux-Sysmon", "Linux-Sysmon/Operational");

fn linux_sysmon(world: &World, rng: &mut Rng, slot: Slot) -> String {
    let host = World::linux_host(rng.below(u64::from(world.linux_hosts.max(1))) as u32);
    let (exe, args) = *rng.pick(LINUX_COMMANDS);
    windows_event(
        1,
        LINUX_SYSMON.1,
        LINUX_SYSMON.0,
        &host,
        slot,
        json!({
            "ProcessId": 1000 + rng.below(60_000),
            "Image": exe,
            "CommandLine": args.join(" "),
            "CurrentDirectory": "/root",
            "ParentImage": "/usr/bin/bash",
            "User": "root",
        }),
    )
}

fn auditd(world: &World, rng: &mut Rng, slot: Slot) -> String {
    let host = World::linux_host(rng.below(u64::from(world.linux_hosts.max(1))) as u32);
    let (exe, args) = *rng.pick(LINUX_COMMANDS);
    auditd_exec(&host, slot, 1000 + rng.below(500) as u32, exe, args, rng)
}

/// The SYSCALL and EXECVE records of one exec on `host` by uid `uid`.
pub fn auditd_exec(
    host: &str,
    slot: Slot,
    uid: u32,
    exe: &str,
    args: &[&str],
    rng: &mut Rng,
) -> String {
    let stamp = format!(
        "{}.{:03}:{}",
        slot.time_ms.div_euclid(1000),
        slot.time_ms.rem_euclid(1000),
        slot.index
    );
    let comm = exe.rsplit('/').next().unwrap_or(exe);
    let argv: Vec<String> = args
        .iter()
        .enumerate()
        .map(|(i, a)| format!("a{i}=\"{a}\""))
        .collect();
    format!(
        "node={host} type=SYSCALL msg=audit({stamp}): arch=c000003e syscall=59 success=yes exit=0 a0=55d1c2 a1=55d1c3 a2=55d1c4 a3=0 items=2 ppid={} pid={} auid={uid} uid={uid} gid={uid} euid={uid} suid={uid} fsuid={uid} egid={uid} sgid={uid} fsgid={uid} tty=pts0 ses={} comm=\"{comm}\" exe=\"{exe}\" key=\"exec\"\n\
         node={host} type=EXECVE msg=audit({stamp}): argc={} {}",
        1000 + rng.below(30_000),
        1000 + rng.below(30_000),
        1 + rng.below(50),
        args.len(),
        argv.join(" ")
    )
}

fn syslog(world: &World, rng: &mut Rng, slot: Slot) -> String {
    let host = World::linux_host(rng.below(u64::from(world.linux_hosts.max(1))) as u32);
    let user = World::user(rng.below(u64::from(world.users.max(1))) as u32);
    let pid = 1000 + rng.below(30_000);
    match rng.below(3) {
        0 => format!(
            "<38>1 {} {host} sshd {pid} - - Accepted publickey for {user} from {} port {} ssh2: ED25519 SHA256:{:x}",
            iso_ms(slot.time_ms),
            internal_ip(rng),
            30_000 + rng.below(30_000),
            rng.next_u64()
        ),
        1 => format!(
            "<85>1 {} {host} sudo - - - {user} : TTY=pts/0 ; PWD=/home/{user} ; USER=root ; COMMAND=/usr/bin/systemctl restart app-{}",
            iso_ms(slot.time_ms),
            rng.below(20)
        ),
        _ => format!(
            "<78>{} {host} CRON[{pid}]: ({user}) CMD (/usr/local/bin/rotate-{}.sh)",
            format_ms(slot.time_ms, "%b %e %H:%M:%S"),
            rng.below(20)
        ),
    }
}

fn cef(world: &World, rng: &mut Rng, slot: Slot) -> String {
    let user = World::user(rng.below(u64::from(world.users.max(1))) as u32);
    let (sig, name, severity, action) = *rng.pick(&[
        ("100", "Connection allowed", 2, "allow"),
        ("100", "Connection allowed", 2, "allow"),
        ("101", "Connection denied", 5, "deny"),
        ("200", "URL category allowed", 3, "allow"),
    ]);
    format!(
        "<134>1 {} fw-edge-{:02} - - - - CEF:0|Vedette Bench|EdgeFW|3.2|{sig}|{name}|{severity}|rt={} src={} spt={} dst={} dpt={} proto=TCP act={action} suser={user} deviceDirection=1 cs1Label=policy cs1=outbound-{}",
        iso_ms(slot.time_ms),
        rng.below(4),
        slot.time_ms,
        internal_ip(rng),
        49152 + rng.below(16_000),
        external_ip(rng),
        rng.pick(&[443u64, 80, 22, 25]),
        rng.below(10)
    )
}

fn panos(world: &World, rng: &mut Rng, slot: Slot) -> String {
    let user = World::user(rng.below(u64::from(world.users.max(1))) as u32);
    let when = format_ms(slot.time_ms, "%Y/%m/%d %H:%M:%S");
    let (app, port, category) = *rng.pick(&[
        ("ssl", 443u64, "computer-and-internet-info"),
        ("web-browsing", 80, "business-and-economy"),
        ("dns", 53, "any"),
        ("ms-office365", 443, "online-storage-and-backup"),
    ]);
    let bytes_sent = 200 + rng.below(20_000);
    let bytes_received = 200 + rng.below(200_000);
    format!(
        "<14>1 {} pa-fw-{:02} - - - - 1,{when},016401002{:03},TRAFFIC,end,2561,{when},{},{},0.0.0.0,0.0.0.0,allow-outbound,corp\\{user},,{app},vsys1,trust,untrust,ethernet1/2,ethernet1/1,default,,{},1,{},{port},0,0,0x400000,tcp,allow,{},{bytes_sent},{bytes_received},{},{when},{},{category},0,{},0x0,10.0.0.0-10.255.255.255,United States,0,{},{},tcp-fin",
        iso_ms(slot.time_ms),
        rng.below(2),
        rng.below(1000),
        internal_ip(rng),
        external_ip(rng),
        100_000 + rng.below(900_000),
        49152 + rng.below(16_000),
        bytes_sent + bytes_received,
        2 + rng.below(200),
        rng.below(600),
        slot.index,
        1 + rng.below(100),
        1 + rng.below(100)
    )
}

/// A CloudTrail record of `user` calling `source`/`name`, with extra members.
pub fn cloudtrail_record(
    user: &str,
    slot: Slot,
    rng: &mut Rng,
    source: &str,
    name: &str,
    extra: Value,
) -> String {
    let mut record = json!({
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "IAMUser",
            "principalId": format!("AIDA{:016X}", rng.next_u64()),
            "arn": format!("arn:aws:iam::111122223333:user/{user}"),
            "accountId": "111122223333",
            "userName": user,
        },
        "eventTime": format_ms(slot.time_ms, "%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": source,
        "eventName": name,
        "awsRegion": *rng.pick(&["eu-west-1", "us-east-1", "eu-central-1"]),
        "sourceIPAddress": external_ip(rng),
        "userAgent": "aws-cli/2.15.0 Python/3.11.6",
        "eventID": format!("{:016x}-{:016x}", rng.next_u64(), slot.index),
        "eventType": "AwsApiCall",
        "recipientAccountId": "111122223333",
    });
    if let (Some(r), Value::Object(e)) = (record.as_object_mut(), extra) {
        r.extend(e);
    }
    record.to_string()
}

fn cloudtrail(world: &World, rng: &mut Rng, slot: Slot) -> String {
    let user = World::user(rng.below(u64::from(world.users.max(1))) as u32);
    if rng.chance(0.05) {
        return cloudtrail_record(
            &user,
            slot,
            rng,
            "signin.amazonaws.com",
            "ConsoleLogin",
            json!({
                "eventType": "AwsConsoleSignIn",
                "responseElements": {"ConsoleLogin": "Success"},
                "additionalEventData": {"MFAUsed": "Yes", "MobileVersion": "No"},
            }),
        );
    }
    let (source, name, read_only) = *rng.pick(AWS_CALLS);
    cloudtrail_record(
        &user,
        slot,
        rng,
        source,
        name,
        json!({"readOnly": read_only, "requestParameters": {"maxResults": 100}}),
    )
}

/// An Okta System Log event of `actor` (an e-mail address).
pub fn okta_event(
    actor: &str,
    slot: Slot,
    rng: &mut Rng,
    event_type: &str,
    message: &str,
    extra: Value,
) -> String {
    let mut event = json!({
        "uuid": format!("{:016x}-{:016x}", rng.next_u64(), slot.index),
        "published": iso_ms(slot.time_ms),
        "eventType": event_type,
        "version": "0",
        "severity": "INFO",
        "displayMessage": message,
        "actor": {"id": format!("00u{:x}", rng.next_u64()), "type": "User", "alternateId": actor, "displayName": actor},
        "client": {"ipAddress": external_ip(rng), "userAgent": {"rawUserAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64)"}},
        "outcome": {"result": "SUCCESS"},
    });
    if let (Some(r), Value::Object(e)) = (event.as_object_mut(), extra) {
        r.extend(e);
    }
    event.to_string()
}

fn okta(world: &World, rng: &mut Rng, slot: Slot) -> String {
    let user = World::user(rng.below(u64::from(world.users.max(1))) as u32);
    let (kind, message) = *rng.pick(OKTA_EVENTS);
    okta_event(
        &format!("{user}@example.com"),
        slot,
        rng,
        kind,
        message,
        json!({}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_program_has_one_digest_per_version() {
        let chrome = WINDOWS_PROGRAMS[0].0;
        let other = WINDOWS_PROGRAMS[1].0;
        let a = binary_sha256(chrome, 1);
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()), "{a}");
        assert_eq!(a, binary_sha256(chrome, 2));
        assert_ne!(a, binary_sha256(chrome, 3));
        assert_eq!(binary_sha256(chrome, 3), binary_sha256(chrome, 6));
        assert_ne!(a, binary_sha256(other, 1));
    }
}
