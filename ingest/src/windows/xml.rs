//! Windows events rendered as XML (`<Event xmlns=...><System>...</System><EventData>
//! <Data Name="X">v</Data>...</EventData></Event>`): the Event Viewer's text export,
//! forwarded events, and Sysmon for Linux, which logs this XML through syslog.
//!
//! A small tolerant reader: elements, attributes, text and the five XML entities plus
//! numeric character references. Text between elements (white space, the Event
//! Viewer's `- ` tree markers) is ignored. Declarations, comments and processing
//! instructions are skipped. The result has the shape the `evtx` crate renders, so the
//! same flattening applies.

use crate::text::Needle;
use serde_json::{Map, Value};

/// Deepest element nesting accepted.
const MAX_DEPTH: usize = 16;

#[derive(Debug, Default)]
struct Element {
    name: String,
    attributes: Vec<(String, String)>,
    children: Vec<Element>,
    text: String,
}

/// Decodes XML entities and character references.
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let Some(end) = after.find(';').filter(|e| *e <= 10) else {
            out.push('&');
            rest = after;
            continue;
        };
        let entity = &after[..end];
        let decoded = match entity {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .map(|h| u32::from_str_radix(h, 16))
                .or_else(|| entity.strip_prefix('#').map(str::parse::<u32>))
                .and_then(Result::ok)
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &after[end + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Parses the attributes of a start tag's inside (after the name).
fn attributes(mut s: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    loop {
        s = s.trim_start();
        if s.is_empty() {
            return Ok(out);
        }
        let eq = s.find('=').ok_or_else(|| {
            format!(
                "attribute without a value near `{}`",
                s.chars().take(20).collect::<String>()
            )
        })?;
        let name = s[..eq].trim().to_string();
        let value_part = s[eq + 1..].trim_start();
        let quote = value_part
            .chars()
            .next()
            .filter(|c| *c == '"' || *c == '\'')
            .ok_or("attribute value not quoted")?;
        let body = &value_part[1..];
        let close = body.find(quote).ok_or("unterminated attribute value")?;
        out.push((name, unescape(&body[..close])));
        s = &body[close + 1..];
    }
}

/// Parses the first element of `xml` and everything inside it.
fn parse_element(xml: &str) -> Result<Element, String> {
    let mut stack: Vec<Element> = Vec::new();
    let mut rest = xml;
    loop {
        let Some(lt) = rest.find('<') else {
            return Err("unterminated XML element".into());
        };
        if let Some(top) = stack.last_mut() {
            top.text.push_str(&rest[..lt]);
        }
        rest = &rest[lt..];
        if let Some(after) = rest.strip_prefix("<!--") {
            rest = after
                .find("-->")
                .map(|i| &after[i + 3..])
                .ok_or("unterminated XML comment")?;
            continue;
        }
        if rest.starts_with("<?") || rest.starts_with("<!") {
            rest = rest
                .find('>')
                .map(|i| &rest[i + 1..])
                .ok_or("unterminated XML declaration")?;
            continue;
        }
        let gt = rest.find('>').ok_or("unterminated XML tag")?;
        let tag = &rest[1..gt];
        rest = &rest[gt + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            let done = stack.pop().ok_or("closing tag without an opening one")?;
            if done.name != name.trim() {
                return Err(format!("`</{}>` closes `<{}>`", name.trim(), done.name));
            }
            match stack.last_mut() {
                Some(parent) => parent.children.push(done),
                None => return Ok(done),
            }
            continue;
        }
        let (tag, self_closing) = match tag.strip_suffix('/') {
            Some(t) => (t, true),
            None => (tag, false),
        };
        let name_end = tag.find(|c: char| c.is_whitespace()).unwrap_or(tag.len());
        let element = Element {
            name: tag[..name_end].to_string(),
            attributes: attributes(&tag[name_end..])?,
            ..Element::default()
        };
        if element.name.is_empty() {
            return Err("XML tag without a name".into());
        }
        if self_closing {
            match stack.last_mut() {
                Some(parent) => parent.children.push(element),
                None => return Ok(element),
            }
        } else {
            if stack.len() >= MAX_DEPTH {
                return Err(format!("XML nesting deeper than {MAX_DEPTH}"));
            }
            stack.push(element);
        }
    }
}

fn text_of(e: &Element) -> String {
    unescape(e.text.trim())
}

fn attributes_object(e: &Element) -> Value {
    Value::Object(
        e.attributes
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

/// A `System` child or a `UserData` node in the shape the `evtx` crate renders it.
fn render(e: &Element) -> Value {
    let text = text_of(e);
    if !e.children.is_empty() {
        let mut map = Map::new();
        if !e.attributes.is_empty() {
            map.insert("#attributes".into(), attributes_object(e));
        }
        for c in &e.children {
            map.insert(c.name.clone(), render(c));
        }
        return Value::Object(map);
    }
    match (e.attributes.is_empty(), text.is_empty()) {
        (true, true) => Value::Null,
        (true, false) => Value::String(text),
        (false, true) => json_attrs(e),
        (false, false) => {
            let mut map = Map::new();
            map.insert("#attributes".into(), attributes_object(e));
            map.insert("#text".into(), Value::String(text));
            Value::Object(map)
        }
    }
}

fn json_attrs(e: &Element) -> Value {
    let mut map = Map::new();
    map.insert("#attributes".into(), attributes_object(e));
    Value::Object(map)
}

/// `EventData`: `<Data Name="X">v</Data>` as `X: v`, unnamed `Data` as a list.
fn render_event_data(e: &Element) -> Value {
    let mut map = Map::new();
    if !e.attributes.is_empty() {
        map.insert("#attributes".into(), attributes_object(e));
    }
    let mut unnamed = Vec::new();
    for c in &e.children {
        let name = c
            .attributes
            .iter()
            .find(|(k, _)| k == "Name")
            .map(|(_, v)| v.clone());
        match (c.name.as_str(), name) {
            ("Data", Some(name)) => {
                map.insert(name, Value::String(text_of(c)));
            }
            ("Data", None) => unnamed.push(Value::String(text_of(c))),
            (other, _) => {
                map.insert(other.to_string(), Value::String(text_of(c)));
            }
        }
    }
    match unnamed.len() {
        0 => {}
        1 => {
            map.insert("Data".into(), unnamed.remove(0));
        }
        _ => {
            let mut list = Map::new();
            list.insert("#text".into(), Value::Array(unnamed));
            map.insert("Data".into(), Value::Object(list));
        }
    }
    Value::Object(map)
}

/// Parses an `<Event>` XML document into `{"Event": {...}}`, the `evtx` JSON shape.
pub(crate) fn event_from_xml(xml: &str) -> Result<Map<String, Value>, String> {
    let start = xml.find("<Event").ok_or("no `<Event` element")?;
    let root = parse_element(&xml[start..])?;
    if root.name != "Event" {
        return Err(format!("root element is `{}`, not `Event`", root.name));
    }
    let mut event = Map::new();
    for section in &root.children {
        let value = match section.name.as_str() {
            "EventData" => render_event_data(section),
            _ => render(section),
        };
        event.insert(section.name.clone(), value);
    }
    if !event.contains_key("System") {
        return Err("`<Event>` has no `<System>`".into());
    }
    let mut out = Map::new();
    out.insert("Event".into(), Value::Object(event));
    Ok(out)
}

/// Whether text carries an XML Windows event.
pub(crate) fn looks_like_xml_event(text: &str) -> bool {
    static OPEN: Needle = Needle::new("<Event");
    static CLOSE: Needle = Needle::new("</Event>");
    static SYSTEM: Needle = Needle::new("<System>");
    OPEN.is_in(text) && CLOSE.is_in(text) && SYSTEM.is_in(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_viewer_text_with_tree_markers() -> Result<(), String> {
        let xml = r#"- <Event xmlns="http://schemas.microsoft.com/win/2004/08/events/event">- <System>  <Provider Name="Microsoft-Windows-Security-Auditing" Guid="{5484}" />   <EventID>4625</EventID> <TimeCreated SystemTime="2022-04-28T16:09:28.9443547Z" /> <Channel>Security</Channel> <Security /> </System>- <EventData>  <Data Name="TargetUserName">a&amp;b &#x41;</Data> <Data Name="Empty" /> </EventData>  </Event>"#;
        let event = event_from_xml(xml)?;
        let flat =
            super::super::nested::flatten_event(event["Event"].as_object().ok_or("no Event")?);
        let get = |k: &str| {
            flat.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(
            get("Provider_Name"),
            Some(Value::String("Microsoft-Windows-Security-Auditing".into()))
        );
        assert_eq!(get("EventID"), Some(Value::String("4625".into())));
        assert_eq!(
            get("TimeCreated_SystemTime"),
            Some(Value::String("2022-04-28T16:09:28.9443547Z".into()))
        );
        assert_eq!(get("TargetUserName"), Some(Value::String("a&b A".into())));
        assert_eq!(get("Empty"), Some(Value::String(String::new())));
        assert_eq!(get("Security"), None);
        Ok(())
    }

    #[test]
    fn malformed_xml_is_an_error_not_a_panic() {
        for bad in [
            "<Event>",
            "<Event><System></Event>",
            "<Event a=1></Event>",
            "<",
            "<Event><System/></Event",
        ] {
            assert!(event_from_xml(bad).is_err(), "{bad}");
        }
        let deep = format!(
            "<Event><System/>{}{}</Event>",
            "<a>".repeat(40),
            "</a>".repeat(40)
        );
        assert!(event_from_xml(&deep).is_err());
    }
}
