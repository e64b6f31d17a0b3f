//! The analyst console's static files (`console/src/`), compiled into the binary and
//! served at `/` (the page) and `/console/{file}` (its scripts and styles). They hold
//! no data and need no token: everything they show comes from the API, with the token
//! the analyst signs in with. Every answer carries a strict Content-Security-Policy
//! (scripts and styles from this origin only, no inline code, no framing).

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error;

/// The console's Content-Security-Policy.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Every file of `console/src/`: (path under it, bytes). A test checks that every file
/// there is listed.
const FILES: &[(&str, &[u8])] = &include!("console_files.rs");

/// The media type of a file, from its extension.
fn media_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map_or("", |(_, ext)| ext) {
        "html" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" => "application/json",
        _ => "application/octet-stream",
    }
}

/// One file with the console's security headers.
fn serve(path: &str) -> Response {
    let Some((_, bytes)) = FILES.iter().find(|(p, _)| *p == path) else {
        return error(StatusCode::NOT_FOUND, "no such console file");
    };
    let mut response = (*bytes).into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, media_type(path)),
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-cache"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// `GET /`: the console's page.
pub(crate) async fn index() -> Response {
    serve("index.html")
}

/// `GET /console/{file}`: one of its files.
pub(crate) async fn asset(Path(file): Path<String>) -> Response {
    serve(&file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(dir: &std::path::Path, base: &std::path::Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).expect("console/src is readable") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                walk(&path, base, out);
            } else {
                let rel = path.strip_prefix(base).expect("under console/src");
                out.push(rel.display().to_string());
            }
        }
    }

    #[test]
    fn every_console_file_is_served() {
        let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("console/src");
        let mut on_disk = Vec::new();
        walk(&base, &base, &mut on_disk);
        on_disk.sort();
        let mut listed: Vec<String> = FILES.iter().map(|(p, _)| p.to_string()).collect();
        listed.sort();
        assert_eq!(
            on_disk, listed,
            "list every file of console/src in src/http/console_files.rs"
        );
        for (path, _) in FILES {
            assert_ne!(media_type(path), "application/octet-stream", "{path}");
        }
    }

    #[test]
    fn unknown_files_are_404_and_pages_carry_the_policy() {
        assert_eq!(serve("../Cargo.toml").status(), StatusCode::NOT_FOUND);
        let page = serve("index.html");
        assert_eq!(page.status(), StatusCode::OK);
        assert_eq!(
            page.headers()[header::CONTENT_SECURITY_POLICY],
            CONTENT_SECURITY_POLICY
        );
    }
}
