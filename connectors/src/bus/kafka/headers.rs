//! A batch header as Kafka message headers: `vedette.schema_version`, `vedette.tenant`,
//! `vedette.source`, `vedette.dataset`, `vedette.ingest_time_ms`, values as UTF-8 text.

use rdkafka::message::{Header, Headers, OwnedHeaders};
use vedette_core::CoreError;

use crate::bus::codec::BatchHeader;

const SCHEMA_VERSION: &str = "vedette.schema_version";
const TENANT: &str = "vedette.tenant";
const SOURCE: &str = "vedette.source";
const DATASET: &str = "vedette.dataset";
const INGEST_TIME: &str = "vedette.ingest_time_ms";

/// Message headers carrying `header`.
pub(crate) fn to_headers(header: &BatchHeader) -> OwnedHeaders {
    let version = header.schema_version.to_string();
    let ingest = header.ingest_time_ms.to_string();
    [
        (SCHEMA_VERSION, version.as_str()),
        (TENANT, header.tenant.as_str()),
        (SOURCE, header.source.as_str()),
        (DATASET, header.dataset.as_str()),
        (INGEST_TIME, ingest.as_str()),
    ]
    .into_iter()
    .fold(OwnedHeaders::new_with_capacity(5), |h, (key, value)| {
        h.insert(Header {
            key,
            value: Some(value),
        })
    })
}

/// The batch header of a message's headers; a message without Vedette's headers is
/// refused (it was not written by Vedette).
pub(crate) fn from_headers<H: Headers>(headers: Option<&H>) -> Result<BatchHeader, CoreError> {
    let mut out = BatchHeader {
        schema_version: 0,
        tenant: String::new(),
        source: String::new(),
        dataset: String::new(),
        ingest_time_ms: 0,
    };
    let mut seen_version = false;
    for h in headers.into_iter().flat_map(|h| h.iter()) {
        let Some(value) = h.value.and_then(|v| std::str::from_utf8(v).ok()) else {
            continue;
        };
        match h.key {
            SCHEMA_VERSION => {
                out.schema_version = value.parse().map_err(|_| {
                    CoreError::BadInput(format!(
                        "kafka header {SCHEMA_VERSION} `{value}` is not a number"
                    ))
                })?;
                seen_version = true;
            }
            TENANT => out.tenant = value.to_string(),
            SOURCE => out.source = value.to_string(),
            DATASET => out.dataset = value.to_string(),
            INGEST_TIME => out.ingest_time_ms = value.parse().unwrap_or(0),
            _ => {}
        }
    }
    if !seen_version {
        return Err(CoreError::BadInput(format!(
            "kafka message has no {SCHEMA_VERSION} header: not written by Vedette"
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let h = BatchHeader {
            schema_version: 1,
            tenant: "acme".into(),
            source: "http".into(),
            dataset: "windows.sysmon".into(),
            ingest_time_ms: 1_700_000_000_123,
        };
        let headers = to_headers(&h);
        assert_eq!(from_headers(Some(&headers)).unwrap(), h);
        assert!(from_headers::<OwnedHeaders>(None).is_err());
    }
}
