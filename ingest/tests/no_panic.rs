//! No parser panics on any input, and every input is accounted for: each parser, given
//! arbitrary bytes (and mutations of real records), returns normally with events and
//! dead letters whose counts match what it reports.

use bytes::Bytes;
use proptest::prelude::*;
use vedette_core::event::EventBatchBuilder;
use vedette_core::traits::RawChunk;
use vedette_ingest::{parser_for, Format, Limits, FORMATS};

/// Real-looking records of each family, to mutate.
const SEEDS: &[&str] = &[
    "<34>1 2003-10-11T22:14:15.003Z mymachine su - ID47 [x@1 a=\"b\\\"c\"] msg",
    "Feb 12 14:10:21 host sshd[1]: Invalid user x from 1.2.3.4 port 5",
    "CEF:0|V|P|1.0|100|name|10|src=10.0.0.1 act=blocked a \\= dst=1.1.1.1 cs1Label=L cs1=v",
    "LEEF:2.0|V|P|1|2|^|src=1.1.1.1^dst=2.2.2.2^devTime=1388577600000",
    "date=2024-10-14 time=13:46:40 tz=\"-0700\" logid=\"1\" type=\"event\" msg=\"a \\\"b\\\"\"",
    "1,2023/07/06 08:11:40,0164,THREAT,vulnerability,1,2023/07/06 08:11:40,1.2.3.2,1.2.3.3",
    "type=EXECVE msg=audit(1604994496.155:92733): argc=2 a0=\"arp\" a1=2F746D70",
    "{\"Event\":{\"System\":{\"EventID\":{\"#text\":1,\"#attributes\":{\"Qualifiers\":1}},\"Channel\":\"Security\"},\"EventData\":{\"Data\":{\"#text\":[\"a\"]}}}}",
    "{\"winlog\":{\"event_id\":1,\"channel\":\"Microsoft-Windows-Sysmon/Operational\",\"event_data\":{\"Image\":\"x\"}}}",
    "{\"Records\":[{\"eventVersion\":\"1\",\"eventSource\":\"s\",\"eventName\":\"n\",\"eventTime\":\"2020-01-01T00:00:00Z\"}]}",
    "#separator \\x09\n#fields\tts\tid.orig_h\n1.5\t1.2.3.4\n",
];

fn check(format: Format, bytes: Vec<u8>) -> Result<(), TestCaseError> {
    let chunk = RawChunk {
        source: "proptest".into(),
        origin: "input".into(),
        tenant: "t".into(),
        bytes: Bytes::from(bytes),
        position: 0,
        received_ms: 1_700_000_000_000,
    };
    let limits = Limits {
        max_record_bytes: 4096,
        max_fields: 64,
        max_depth: 8,
        max_payload_bytes: 256,
    };
    let mut builder = EventBatchBuilder::new();
    let mut dead = Vec::new();
    let stats = parser_for(format, limits).parse(&chunk, &mut builder, &mut dead);
    prop_assert_eq!(stats.events, builder.len());
    prop_assert_eq!(stats.dead_letters, dead.len());
    prop_assert!(builder.finish().is_ok());
    for d in &dead {
        prop_assert!(!d.reason.is_empty());
    }
    Ok(())
}

fn mutated_seed() -> impl Strategy<Value = Vec<u8>> {
    (
        0..SEEDS.len(),
        proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
        any::<usize>(),
    )
        .prop_map(|(i, edits, cut)| {
            let mut bytes = SEEDS[i].as_bytes().to_vec();
            for (at, b) in edits {
                if !bytes.is_empty() {
                    let at = at % bytes.len();
                    bytes[at] = b;
                }
            }
            let keep = (cut % (bytes.len() + 1)).max(bytes.len() / 2);
            bytes.truncate(keep);
            bytes
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        for (format, _) in FORMATS {
            check(*format, bytes.clone())?;
        }
    }

    #[test]
    fn mutated_records_never_panic(bytes in mutated_seed()) {
        for (format, _) in FORMATS {
            check(*format, bytes.clone())?;
        }
    }

    #[test]
    fn deep_json_is_a_dead_letter_not_a_crash(depth in 1usize..200) {
        let doc = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
        let line = format!("{{\"a\":{doc}}}\n");
        check(Format::Json, line.into_bytes())?;
    }
}
