//! Table-driven mappings from the flattened fields of a JSON log family to the common
//! columns: for each column, the keys to try in order.

use vedette_core::event::{IntCol, Row, TextCol};

use crate::flatten::FieldSink;
use crate::record::set_row_time;
use crate::text::parse_int;
use crate::timestamp::parse_any;
use crate::windows::lowercase;

/// A common column a mapping can fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Col {
    HostName,
    HostIp,
    UserName,
    SourceIp,
    SourcePort,
    DestinationIp,
    DestinationPort,
    Transport,
    Action,
    Category,
    Code,
    Provider,
    Severity,
    Url,
    Dns,
    AccountId,
    Region,
    ProcessExecutable,
    CommandLine,
    Pid,
    FilePath,
    FileSha256,
    Message,
}

/// How one JSON log family maps to the common columns.
#[derive(Debug)]
pub(crate) struct Mapping {
    /// `event.dataset`.
    pub(crate) dataset: &'static str,
    /// `cloud.provider`, when the family is a cloud service.
    pub(crate) cloud: Option<&'static str>,
    /// Keys holding the event time, in order of preference.
    pub(crate) time: &'static [&'static str],
    /// Columns and the keys to fill them from, in order of preference.
    pub(crate) columns: &'static [(Col, &'static [&'static str])],
}

impl Mapping {
    /// Fills the row's common columns from the flattened fields.
    pub(crate) fn apply<'s>(&self, row: &mut Row<'s>, f: &'s FieldSink<'_>) {
        row.set(TextCol::Kind, "event");
        row.set_opt(TextCol::CloudProvider, self.cloud);
        let time_text = self.time.iter().find_map(|k| f.get(k));
        set_row_time(row, time_text, time_text.and_then(parse_any));
        for (col, keys) in self.columns {
            let Some(value) = keys
                .iter()
                .filter_map(|k| f.get(k))
                .find(|v| !v.is_empty() && *v != "-")
            else {
                continue;
            };
            match col.target() {
                Target::Text(column) => row.set(column, value),
                Target::Lower(column) => row.set(column, lowercase(value)),
                Target::Int(column) => row.set_int(column, parse_int(value)),
            }
        }
    }
}

/// Where a mapped value goes in a row.
enum Target {
    /// A text column, as it is.
    Text(TextCol),
    /// A text column, in lower case.
    Lower(TextCol),
    /// An integer column, parsed.
    Int(IntCol),
}

impl Col {
    fn target(self) -> Target {
        use Target::{Int, Lower, Text};
        match self {
            Col::SourcePort => Int(IntCol::SourcePort),
            Col::DestinationPort => Int(IntCol::DestinationPort),
            Col::Severity => Int(IntCol::Severity),
            Col::Pid => Int(IntCol::ProcessPid),
            Col::Transport => Lower(TextCol::NetworkTransport),
            Col::FileSha256 => Lower(TextCol::FileSha256),
            Col::HostName => Text(TextCol::HostName),
            Col::HostIp => Text(TextCol::HostIp),
            Col::UserName => Text(TextCol::UserName),
            Col::SourceIp => Text(TextCol::SourceIp),
            Col::DestinationIp => Text(TextCol::DestinationIp),
            Col::Action => Text(TextCol::Action),
            Col::Category => Text(TextCol::Category),
            Col::Code => Text(TextCol::Code),
            Col::Provider => Text(TextCol::Provider),
            Col::Url => Text(TextCol::UrlFull),
            Col::Dns => Text(TextCol::DnsQuestionName),
            Col::AccountId => Text(TextCol::CloudAccountId),
            Col::Region => Text(TextCol::CloudRegion),
            Col::ProcessExecutable => Text(TextCol::ProcessExecutable),
            Col::CommandLine => Text(TextCol::ProcessCommandLine),
            Col::FilePath => Text(TextCol::FilePath),
            Col::Message => Text(TextCol::Message),
        }
    }
}

use Col::*;

/// Anything else: a JSON object with common time and host keys.
pub(crate) const GENERIC: Mapping = Mapping {
    dataset: "json",
    cloud: None,
    time: &[
        "@timestamp",
        "timestamp",
        "time",
        "ts",
        "date",
        "datetime",
        "eventTime",
        "EventTime",
        "TimeGenerated",
    ],
    columns: &[
        (
            HostName,
            &["host.name", "hostname", "host", "HostName", "Computer"],
        ),
        (UserName, &["user.name", "user", "username"]),
        (SourceIp, &["source.ip", "src_ip", "src", "client_ip"]),
        (
            DestinationIp,
            &["destination.ip", "dest_ip", "dst_ip", "dst"],
        ),
        (Message, &["message", "msg", "SyslogMessage"]),
    ],
};

/// AWS CloudTrail records.
pub(crate) const CLOUDTRAIL: Mapping = Mapping {
    dataset: "aws.cloudtrail",
    cloud: Some("aws"),
    time: &["eventTime", "@timestamp"],
    columns: &[
        (Action, &["eventName"]),
        (Provider, &["eventSource"]),
        (
            UserName,
            &[
                "userIdentity.userName",
                "userIdentity.sessionContext.sessionIssuer.userName",
                "userIdentity.principalId",
            ],
        ),
        (SourceIp, &["sourceIPAddress"]),
        (AccountId, &["recipientAccountId", "userIdentity.accountId"]),
        (Region, &["awsRegion"]),
        (Category, &["eventCategory"]),
    ],
};

/// Okta System Log events.
pub(crate) const OKTA: Mapping = Mapping {
    dataset: "okta.system",
    cloud: Some("okta"),
    time: &["published"],
    columns: &[
        (Action, &["eventType"]),
        (UserName, &["actor.alternateId", "actor.displayName"]),
        (SourceIp, &["client.ipAddress"]),
        (Message, &["displayMessage"]),
    ],
};

/// GCP Cloud Audit Logs (LogEntry with an AuditLog protoPayload).
pub(crate) const GCP_AUDIT: Mapping = Mapping {
    dataset: "gcp.audit",
    cloud: Some("gcp"),
    time: &["timestamp", "receiveTimestamp"],
    columns: &[
        (
            Action,
            &["protoPayload.methodName", "protopayload.methodName"],
        ),
        (
            Provider,
            &["protoPayload.serviceName", "protopayload.serviceName"],
        ),
        (
            UserName,
            &[
                "protoPayload.authenticationInfo.principalEmail",
                "protopayload.authenticationInfo.principalEmail",
            ],
        ),
        (
            SourceIp,
            &[
                "protoPayload.requestMetadata.callerIp",
                "protoPayload.requestMetadata.callerIP",
                "protopayload.requestMetadata.callerIp",
                "protopayload.requestMetadata.callerIP",
            ],
        ),
        (AccountId, &["resource.labels.project_id"]),
        (
            Region,
            &[
                "resource.labels.location",
                "resource.labels.region",
                "resource.labels.zone",
            ],
        ),
    ],
};

/// Azure activity and Entra ID audit logs (Azure Monitor export).
pub(crate) const AZURE: Mapping = Mapping {
    dataset: "azure.activity",
    cloud: Some("azure"),
    time: &["time", "properties.activityDateTime", "TimeGenerated"],
    columns: &[
        (Action, &["operationName", "properties.operationName"]),
        (Category, &["category"]),
        (
            UserName,
            &[
                "identity.claims.name",
                "caller",
                "properties.initiatedBy.user.userPrincipalName",
                "identity",
            ],
        ),
        (
            SourceIp,
            &["callerIpAddress", "properties.initiatedBy.user.ipAddress"],
        ),
        (Region, &["location"]),
    ],
};

/// Kubernetes API server audit events.
pub(crate) const K8S_AUDIT: Mapping = Mapping {
    dataset: "kubernetes.audit",
    cloud: None,
    time: &["requestReceivedTimestamp", "stageTimestamp"],
    columns: &[
        (Action, &["verb"]),
        (UserName, &["user.username"]),
        (SourceIp, &["sourceIPs"]),
        (Url, &["requestURI"]),
        (Code, &["responseStatus.code"]),
    ],
};

/// Suricata EVE JSON.
pub(crate) const SURICATA: Mapping = Mapping {
    dataset: "suricata.eve",
    cloud: None,
    time: &["timestamp"],
    columns: &[
        (Action, &["event_type"]),
        (SourceIp, &["src_ip"]),
        (SourcePort, &["src_port"]),
        (DestinationIp, &["dest_ip"]),
        (DestinationPort, &["dest_port"]),
        (Transport, &["proto"]),
        (HostName, &["host"]),
        (Code, &["alert.signature_id"]),
        (Severity, &["alert.severity"]),
        (Message, &["alert.signature"]),
        (Dns, &["dns.rrname", "dns.query.rrname"]),
        (Url, &["http.url"]),
        (FilePath, &["fileinfo.filename"]),
        (FileSha256, &["fileinfo.sha256"]),
    ],
};

/// Zeek logs in JSON (plain `id.orig_h` or json-streaming `id_orig_h`).
pub(crate) const ZEEK: Mapping = Mapping {
    dataset: "zeek",
    cloud: None,
    time: &["ts", "_write_ts", "@timestamp"],
    columns: &[
        (SourceIp, &["id.orig_h", "id_orig_h"]),
        (SourcePort, &["id.orig_p", "id_orig_p"]),
        (DestinationIp, &["id.resp_h", "id_resp_h"]),
        (DestinationPort, &["id.resp_p", "id_resp_p"]),
        (Transport, &["proto"]),
        (Dns, &["query"]),
        (Url, &["uri"]),
        (HostName, &["@system", "_system_name"]),
        (UserName, &["username", "user"]),
        (FileSha256, &["sha256"]),
    ],
};

/// CrowdStrike Falcon Data Replicator events.
pub(crate) const CROWDSTRIKE_FDR: Mapping = Mapping {
    dataset: "crowdstrike.fdr",
    cloud: None,
    time: &[
        "timestamp",
        "event.timestamp",
        "ContextTimeStamp",
        "event.ContextTimeStamp",
    ],
    columns: &[
        (Action, &["event_simpleName", "event.event_simpleName"]),
        (HostName, &["ComputerName", "event.ComputerName", "aid"]),
        (HostIp, &["aip", "event.aip"]),
        (UserName, &["UserName", "event.UserName"]),
        (ProcessExecutable, &["ImageFileName", "event.ImageFileName"]),
        (CommandLine, &["CommandLine", "event.CommandLine"]),
        (Pid, &["RawProcessId", "event.RawProcessId"]),
        (FileSha256, &["SHA256HashData", "event.SHA256HashData"]),
    ],
};

/// AWS VPC flow logs in JSON.
pub(crate) const VPC_FLOW: Mapping = Mapping {
    dataset: "aws.vpcflow",
    cloud: Some("aws"),
    time: &["start", "end"],
    columns: &[
        (SourceIp, &["srcaddr", "srcAddr"]),
        (SourcePort, &["srcport", "srcPort"]),
        (DestinationIp, &["dstaddr", "dstAddr"]),
        (DestinationPort, &["dstport", "dstPort"]),
        (Action, &["action"]),
        (AccountId, &["account-id", "accountId"]),
        (Region, &["region"]),
    ],
};
