use super::*;
use crate::record::test_support::run;

fn auto() -> TextLineParser {
    TextLineParser::new(TextContent::Auto, Limits::default())
}

#[test]
fn bsd_syslog_line() {
    let (stats, rows, _) = run(&auto(), b"Feb 12 14:10:21 sd-126005 sshd[16378]: Invalid user pascal from 35.188.49.176 port 53502\n");
    assert_eq!(stats.events, 1);
    let r = &rows[0];
    assert_eq!(r["event.dataset"], "syslog");
    assert_eq!(r["host.name"], "sd-126005");
    assert_eq!(r["event.provider"], "sshd");
    assert_eq!(r["process.pid"], 16378);
    assert_eq!(r["@timestamp"], "2026-02-12T14:10:21.000Z");
    assert_eq!(
        r["tags"],
        serde_json::json!(["timezone_missing", "year_inferred"]),
        "{r}"
    );
    assert_eq!(
        r["fields"]["syslog.message"],
        "Invalid user pascal from 35.188.49.176 port 53502"
    );
}

#[test]
fn cef_inside_syslog_and_alone() {
    let input = b"Sep  8 08:32:20 UDM-Gent CEF: 0|Ubiquiti|UniFi Network|9.4.19|201|Threat Detected|9|proto=TCP src=192.168.100.252 spt=65020 dst=192.168.1.1 dpt=443\nCEF:0|Security|threatmanager|1.0|100|worm stopped|10|src=10.0.0.1 dst=2.1.2.2 spt=1232 rt=1388577600000\n";
    let (stats, rows, dead) = run(&auto(), input);
    assert_eq!((stats.events, dead.len()), (2, 0));
    assert_eq!(rows[0]["event.dataset"], "cef");
    assert_eq!(rows[0]["destination.port"], 443);
    assert_eq!(rows[0]["network.transport"], "tcp");
    assert_eq!(rows[0]["host.name"], "UDM-Gent");
    assert_eq!(rows[1]["source.port"], 1232);
    assert_eq!(rows[1]["@timestamp"], "2014-01-01T12:00:00.000Z");
    assert_eq!(rows[1]["event.severity"], 10);
}

#[test]
fn a_bad_record_in_the_middle_is_the_only_dead_letter() {
    let parser = TextLineParser::new(TextContent::Cef, Limits::default());
    let input = b"CEF:0|a|b|1|2|n|3|src=1.1.1.1\nCEF:0|broken\nCEF:0|a|b|1|2|n|3|src=2.2.2.2\n";
    let (stats, rows, dead) = run(&parser, input);
    assert_eq!((stats.events, stats.dead_letters), (2, 1));
    assert_eq!(rows[1]["source.ip"], "2.2.2.2");
    assert_eq!(dead[0].position, 30);
    assert_eq!(dead[0].raw, b"CEF:0|broken");
    assert!(dead[0].reason.contains("CEF header"), "{}", dead[0].reason);
}

#[test]
fn an_octet_counted_frame_cut_short_is_a_dead_letter_not_an_event() {
    let whole = "<13>Oct 11 22:14:15 web-1 su: whole";
    let input = format!(
        "{} {whole}60 <13>Oct 11 22:14:15 web-1 su: cut",
        whole.len()
    );
    let (stats, rows, dead) = run(&auto(), input.as_bytes());
    assert_eq!((stats.events, stats.dead_letters), (1, 1));
    assert_eq!(rows[0]["message"], whole);
    assert!(
        dead[0].reason.contains("cut short: 60 bytes declared"),
        "{}",
        dead[0].reason
    );
    assert_eq!(dead[0].raw, b"<13>Oct 11 22:14:15 web-1 su: cut");
}

#[test]
fn oversized_records_are_dead_lettered() {
    let limits = Limits {
        max_record_bytes: 10,
        ..Limits::default()
    };
    let parser = TextLineParser::new(TextContent::Auto, limits);
    let (stats, _, dead) = run(&parser, b"short\nthis line is far too long\nok\n");
    assert_eq!((stats.events, stats.dead_letters), (2, 1));
    assert!(dead[0].reason.contains("exceeds the 10-byte limit"));
}

#[test]
fn rfc5424_json_message_is_flattened() {
    let (_, rows, _) = run(&auto(), b"<134>1 2016-04-01T16:44:58Z MacBook-Pro-3 - 94473 - - {\"pid\":94473,\"msg\":\"hello world\"}");
    assert_eq!(rows[0]["fields"]["msg"], "hello world");
    assert_eq!(rows[0]["event.severity"], 6);
    assert!(rows[0].get("tags").is_none());
}

#[test]
fn leef_and_fortigate_and_panos_are_recognized() {
    let input = concat!(
        "LEEF:1.0|CyberArk|PTA|14.0|1|cat=x\tsrc=1.1.1.1\tdevTime=1388577600000\n",
        "date=2024-10-14 time=13:46:40 eventtime=1728938800841267391 tz=\"-0700\" logid=\"0101039426\" type=\"event\" subtype=\"vpn\" remip=192.168.0.1 user=\"bob\"\n",
        "2023-07-06T08:11:40+02:00 pa.host 1,2023/07/06 08:11:40,0164,THREAT,vulnerability,2561,2023/07/06 08:11:40,1.2.3.2,1.2.3.3\n",
    );
    let (stats, rows, _) = run(&auto(), input.as_bytes());
    assert_eq!(stats.events, 3);
    let datasets: Vec<&str> = rows
        .iter()
        .filter_map(|r| r["event.dataset"].as_str())
        .collect();
    assert_eq!(datasets, ["leef", "fortigate", "paloalto"]);
    assert_eq!(rows[1]["user.name"], "bob");
    assert_eq!(rows[1]["source.ip"], "192.168.0.1");
    assert_eq!(rows[2]["host.name"], "pa.host");
}

#[test]
fn a_line_that_only_mentions_cef_stays_syslog() {
    let (stats, rows, _) = run(
        &auto(),
        b"Feb 12 14:10:21 h app[1]: failed to parse CEF: bad header\n",
    );
    assert_eq!((stats.events, stats.dead_letters), (1, 0));
    assert_eq!(rows[0]["event.dataset"], "syslog");
}

#[test]
fn an_id_begins_with_the_records_own_time_and_only_then() {
    use vedette_core::id::{event_id, TIME_DIGITS};
    let lines: [&[u8]; 3] = [
        b"<34>1 2026-11-20T10:00:00.123Z web sshd 7 - - session opened",
        b"<34>Nov 20 10:00:00 web sshd[7]: session opened",
        b"<34>1 - web sshd 7 - - no time",
    ];
    for (line, own_time) in lines.iter().zip([true, false, false]) {
        let (_, rows, _) = run(&auto(), line);
        let id = rows[0]["event.id"].as_str().unwrap().to_string();
        let hashed = event_id("default", "syslog", line);
        assert_eq!(id[TIME_DIGITS..], hashed[TIME_DIGITS..]);
        if own_time {
            // 2026-11-20T10:00:00.123Z in milliseconds, in hex.
            assert_eq!(&id[..TIME_DIGITS], format!("{:012x}", 1_795_168_800_123u64));
        } else {
            // A year inferred from the ingest time, or the ingest time: the hash alone.
            assert_eq!(id, hashed, "{}", String::from_utf8_lossy(line));
        }
    }
}
