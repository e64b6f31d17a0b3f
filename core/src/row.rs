//! One row of the event schema that borrows its text from what the parser holds.
//!
//! [`crate::event::Event`] owns every value, which suits tests and the rarer formats;
//! the hot parsers (JSON lines, syslog) fill a [`Row`] instead, whose text columns
//! borrow from the record being parsed, and hand it with the record's fields to
//! [`crate::event::EventBatchBuilder::append_row`]: the values are copied once, into the
//! Arrow column builders. A text column may be set more than once; the last value is
//! the one written.

use std::borrow::Cow;

use crate::id::EventId;
use crate::schema::col;

/// A text column of the event schema, as an index into [`Row`]'s text values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextCol {
    /// `event.id`.
    Id,
    /// `event.dataset`.
    Dataset,
    /// `event.kind`.
    Kind,
    /// `event.category`.
    Category,
    /// `event.action`.
    Action,
    /// `event.outcome`.
    Outcome,
    /// `event.code`.
    Code,
    /// `event.provider`.
    Provider,
    /// `host.name`.
    HostName,
    /// `host.ip`.
    HostIp,
    /// `user.name`.
    UserName,
    /// `user.domain`.
    UserDomain,
    /// `process.executable`.
    ProcessExecutable,
    /// `process.command_line`.
    ProcessCommandLine,
    /// `process.parent.executable`.
    ParentExecutable,
    /// `process.parent.command_line`.
    ParentCommandLine,
    /// `file.path`.
    FilePath,
    /// `file.hash.sha256`.
    FileSha256,
    /// `source.ip`.
    SourceIp,
    /// `destination.ip`.
    DestinationIp,
    /// `network.transport`.
    NetworkTransport,
    /// `url.full`.
    UrlFull,
    /// `dns.question.name`.
    DnsQuestionName,
    /// `cloud.provider`.
    CloudProvider,
    /// `cloud.account.id`.
    CloudAccountId,
    /// `cloud.region`.
    CloudRegion,
    /// `tenant`.
    Tenant,
    /// `message`.
    Message,
}

impl TextCol {
    /// How many text columns there are.
    pub const COUNT: usize = 28;

    /// The text column named `column`, if it is one.
    pub fn of(column: &str) -> Option<Self> {
        use TextCol::*;
        Some(match column {
            col::EVENT_ID => Id,
            col::EVENT_DATASET => Dataset,
            col::EVENT_KIND => Kind,
            col::EVENT_CATEGORY => Category,
            col::EVENT_ACTION => Action,
            col::EVENT_OUTCOME => Outcome,
            col::EVENT_CODE => Code,
            col::EVENT_PROVIDER => Provider,
            col::HOST_NAME => HostName,
            col::HOST_IP => HostIp,
            col::USER_NAME => UserName,
            col::USER_DOMAIN => UserDomain,
            col::PROCESS_EXECUTABLE => ProcessExecutable,
            col::PROCESS_COMMAND_LINE => ProcessCommandLine,
            col::PROCESS_PARENT_EXECUTABLE => ParentExecutable,
            col::PROCESS_PARENT_COMMAND_LINE => ParentCommandLine,
            col::FILE_PATH => FilePath,
            col::FILE_HASH_SHA256 => FileSha256,
            col::SOURCE_IP => SourceIp,
            col::DESTINATION_IP => DestinationIp,
            col::NETWORK_TRANSPORT => NetworkTransport,
            col::URL_FULL => UrlFull,
            col::DNS_QUESTION_NAME => DnsQuestionName,
            col::CLOUD_PROVIDER => CloudProvider,
            col::CLOUD_ACCOUNT_ID => CloudAccountId,
            col::CLOUD_REGION => CloudRegion,
            col::TENANT => Tenant,
            col::MESSAGE => Message,
            _ => return None,
        })
    }
}

/// An integer column of the event schema, as an index into [`Row`]'s integer values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntCol {
    /// `event.severity`.
    Severity,
    /// `process.pid`.
    ProcessPid,
    /// `source.port`.
    SourcePort,
    /// `destination.port`.
    DestinationPort,
}

impl IntCol {
    /// How many integer columns there are.
    pub const COUNT: usize = 4;

    /// The integer column named `column`, if it is one.
    pub fn of(column: &str) -> Option<Self> {
        Some(match column {
            col::EVENT_SEVERITY => Self::Severity,
            col::PROCESS_PID => Self::ProcessPid,
            col::SOURCE_PORT => Self::SourcePort,
            col::DESTINATION_PORT => Self::DestinationPort,
            _ => return None,
        })
    }
}

/// How many distinct processing flags a [`Row`] holds, held in place rather than in a
/// vector (rows are made per record): more than [`crate::event::tag`] names.
pub const MAX_TAGS: usize = 8;
const _: () = assert!(crate::event::tag::ALL.len() <= MAX_TAGS);

/// The common columns of one event, borrowed where they can be (the `fields` map is
/// handed to the builder beside it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row<'a> {
    /// When the event happened, Unix milliseconds UTC.
    pub timestamp_ms: i64,
    /// When Vedette received it, Unix milliseconds UTC.
    pub ingested_ms: i64,
    text: [Option<Cow<'a, str>>; TextCol::COUNT],
    /// `event.id` when it was set as an [`EventId`] (a text value set for the column
    /// wins).
    id: Option<EventId>,
    int: [Option<i64>; IntCol::COUNT],
    /// Processing flags (see [`crate::event::tag`]), each once: the first `tag_count`.
    tags: [&'static str; MAX_TAGS],
    tag_count: usize,
    /// Binary content for content scanning.
    pub payload: Option<Cow<'a, [u8]>>,
}

impl<'a> Row<'a> {
    /// Sets a text column (replacing an earlier value).
    pub fn set(&mut self, column: TextCol, value: impl Into<Cow<'a, str>>) {
        self.set_opt(column, Some(value));
    }

    /// Sets a text column to `value`, or clears it when `value` is None.
    pub fn set_opt<V: Into<Cow<'a, str>>>(&mut self, column: TextCol, value: Option<V>) {
        if column == TextCol::Id {
            self.id = None;
        }
        self.text[column as usize] = value.map(Into::into);
    }

    /// Sets `event.id`, held without allocating.
    #[inline]
    pub fn set_id(&mut self, id: EventId) {
        self.text[TextCol::Id as usize] = None;
        self.id = Some(id);
    }

    /// The id set by [`Row::set_id`], to change in place (None when the column holds
    /// text instead).
    #[inline]
    pub fn id_mut(&mut self) -> Option<&mut EventId> {
        match self.text[TextCol::Id as usize] {
            Some(_) => None,
            None => self.id.as_mut(),
        }
    }

    /// The value of a text column.
    #[inline]
    pub fn text(&self, column: TextCol) -> Option<&str> {
        match &self.text[column as usize] {
            Some(value) => Some(value),
            None if column == TextCol::Id => self.id.as_ref().map(EventId::as_str),
            None => None,
        }
    }

    /// The value of a text column, to change in place (for `event.id`, only one set as
    /// text; see [`Row::id_mut`]).
    pub fn text_mut(&mut self, column: TextCol) -> Option<&mut Cow<'a, str>> {
        self.text[column as usize].as_mut()
    }

    /// Sets an integer column, or clears it when `value` is None.
    pub fn set_int(&mut self, column: IntCol, value: Option<i64>) {
        self.int[column as usize] = value;
    }

    /// The value of the integer column of index `i` (in [`IntCol`] order).
    #[inline]
    pub(crate) fn int_at(&self, i: usize) -> Option<i64> {
        self.int.get(i).copied().flatten()
    }

    /// The value of an integer column.
    pub fn int(&self, column: IntCol) -> Option<i64> {
        self.int[column as usize]
    }

    /// Adds a processing flag once. A row holds up to [`MAX_TAGS`] distinct flags (more
    /// than there are); one past that is not kept.
    pub fn add_tag(&mut self, tag: &'static str) {
        if self.tags().contains(&tag) {
            return;
        }
        debug_assert!(
            self.tag_count < MAX_TAGS,
            "more than {MAX_TAGS} flags: {tag}"
        );
        if self.tag_count < MAX_TAGS {
            self.tags[self.tag_count] = tag;
            self.tag_count += 1;
        }
    }

    /// The processing flags, in the order they were added.
    pub fn tags(&self) -> &[&'static str] {
        &self.tags[..self.tag_count]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{ColumnKind, EVENT_COLUMNS};

    #[test]
    fn every_text_and_integer_column_has_an_index() {
        let texts: Vec<_> = EVENT_COLUMNS
            .iter()
            .filter(|c| c.kind == ColumnKind::Text)
            .map(|c| TextCol::of(c.name).map(|t| t as usize))
            .collect();
        assert_eq!(texts, (0..TextCol::COUNT).map(Some).collect::<Vec<_>>());
        let ints: Vec<_> = EVENT_COLUMNS
            .iter()
            .filter(|c| c.kind == ColumnKind::Integer)
            .map(|c| IntCol::of(c.name).map(|t| t as usize))
            .collect();
        assert_eq!(ints, (0..IntCol::COUNT).map(Some).collect::<Vec<_>>());
    }

    #[test]
    fn the_last_value_set_is_kept() {
        let mut row = Row::default();
        row.set(TextCol::Kind, "event");
        row.set(TextCol::Kind, String::from("alert"));
        row.set_opt::<&str>(TextCol::HostName, None);
        let id = crate::id::EventId::of("t", "d", b"x");
        row.set_id(id);
        assert_eq!(row.text(TextCol::Id), Some(id.as_str()));
        row.set(TextCol::Id, "text");
        assert_eq!(row.id_mut(), None);
        assert_eq!(row.text(TextCol::Id), Some("text"));
        row.set_id(id);
        row.set_opt::<&str>(TextCol::Id, None);
        assert_eq!(row.text(TextCol::Id), None);
        row.set_int(IntCol::ProcessPid, Some(4));
        row.add_tag("x");
        row.add_tag("x");
        assert_eq!(row.text(TextCol::Kind), Some("alert"));
        assert_eq!(row.text(TextCol::HostName), None);
        assert_eq!(row.int(IntCol::ProcessPid), Some(4));
        assert_eq!(row.tags(), ["x"]);
        let names: Vec<&'static str> = (1..MAX_TAGS)
            .map(|i| &*String::leak(format!("t{i}")))
            .collect();
        for name in names.iter().chain(&names) {
            row.add_tag(name);
        }
        assert_eq!(&row.tags()[1..], &names[..]);
    }
}
