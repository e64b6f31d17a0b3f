//! Consumer groups of the embedded log: committed offsets, kept durably per group (a
//! snapshot and a journal, see [`super::commit_journal`]), and membership, kept in memory
//! (members live in this process only).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use vedette_core::CoreError;

use super::commit_journal::CommitJournal;
use crate::bus::lock;

/// Members of one group on one topic.
#[derive(Debug, Default)]
struct Membership {
    /// Member ids in join order.
    members: Vec<u64>,
    /// Bumped at every join and leave.
    generation: u64,
    /// Next offset the group's members will read, per partition they have read.
    reads: HashMap<u32, u64>,
    /// When a member last joined or read.
    active_at: Option<std::time::Instant>,
}

/// Commits and members of every group.
#[derive(Debug)]
pub(crate) struct Groups {
    dir: PathBuf,
    /// Each group's commits behind its own lock, so one group's sync does not hold up
    /// another's commit.
    commits: Mutex<HashMap<String, Arc<Mutex<CommitJournal>>>>,
    members: Mutex<HashMap<(String, String), Membership>>,
    next_member: Mutex<u64>,
}

/// Checks a topic or group name: it becomes a file or folder name.
pub(crate) fn check_name(what: &str, name: &str) -> Result<(), CoreError> {
    let ok = !name.is_empty()
        && name.len() <= 200
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(CoreError::BadInput(format!(
            "{what} name `{name}`: use 1 to 200 letters, digits, `.`, `_` or `-`"
        )))
    }
}

impl Groups {
    /// Loads every group's commits from `dir`.
    pub(crate) fn open(dir: &Path) -> Result<Self, CoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| CoreError::io(format!("creating {}", dir.display()), e))?;
        let entries = std::fs::read_dir(dir)
            .map_err(|e| CoreError::io(format!("listing {}", dir.display()), e))?;
        let names: BTreeSet<String> = entries
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().to_str()?.to_string();
                let group = name
                    .strip_suffix(".json")
                    .or_else(|| name.strip_suffix(".journal"))?;
                check_name("group", group).ok()?;
                Some(group.to_string())
            })
            .collect();
        let mut commits = HashMap::new();
        for group in names {
            let journal = CommitJournal::open(dir, &group)?;
            commits.insert(group, Arc::new(Mutex::new(journal)));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            commits: Mutex::new(commits),
            members: Mutex::new(HashMap::new()),
            next_member: Mutex::new(1),
        })
    }

    /// The next offset `group` reads in a partition, if it ever committed there.
    pub(crate) fn committed(&self, group: &str, topic: &str, partition: u32) -> Option<u64> {
        let journal = lock(&self.commits).get(group)?.clone();
        let journal = lock(&journal);
        journal.commits().get(topic)?.get(&partition).copied()
    }

    /// Every group's journal, taken out of the map's lock.
    fn journals(&self) -> Vec<(String, Arc<Mutex<CommitJournal>>)> {
        lock(&self.commits)
            .iter()
            .map(|(g, j)| (g.clone(), j.clone()))
            .collect()
    }

    /// The lowest commit of any group that committed on the partition's topic (a group
    /// that committed other partitions of the topic but not this one counts as 0).
    pub(crate) fn slowest(&self, topic: &str, partition: u32) -> Option<u64> {
        self.journals()
            .iter()
            .filter_map(|(_, journal)| {
                let journal = lock(journal);
                let parts = journal.commits().get(topic)?;
                Some(parts.get(&partition).copied().unwrap_or(0))
            })
            .min()
    }

    /// Every commit: (group, topic, partition, next offset).
    pub(crate) fn all_commits(&self) -> Vec<(String, String, u32, u64)> {
        let mut out = Vec::new();
        for (group, journal) in self.journals() {
            let journal = lock(&journal);
            for (topic, parts) in journal.commits() {
                for (&p, &o) in parts {
                    out.push((group.clone(), topic.clone(), p, o));
                }
            }
        }
        out
    }

    /// Durably records that `group` resumes `topic`/`partition` at `next`.
    pub(crate) fn commit(
        &self,
        group: &str,
        topic: &str,
        partition: u32,
        next: u64,
    ) -> Result<(), CoreError> {
        let journal = {
            let mut commits = lock(&self.commits);
            match commits.get(group) {
                Some(journal) => journal.clone(),
                None => {
                    let journal = Arc::new(Mutex::new(CommitJournal::open(&self.dir, group)?));
                    commits.insert(group.to_string(), journal.clone());
                    journal
                }
            }
        };
        let mut journal = lock(&journal);
        journal.commit(topic, partition, next)
    }

    /// Adds a member; returns its id.
    pub(crate) fn join(&self, group: &str, topic: &str) -> u64 {
        let id = {
            let mut next = lock(&self.next_member);
            *next += 1;
            *next
        };
        let mut members = lock(&self.members);
        let m = members
            .entry((group.to_string(), topic.to_string()))
            .or_default();
        m.members.push(id);
        m.generation += 1;
        m.active_at = Some(std::time::Instant::now());
        id
    }

    /// Removes a member.
    pub(crate) fn leave(&self, group: &str, topic: &str, member: u64) {
        let mut members = lock(&self.members);
        if let Some(m) = members.get_mut(&(group.to_string(), topic.to_string())) {
            if let Some(i) = m.members.iter().position(|&x| x == member) {
                m.members.remove(i);
                m.generation += 1;
            }
        }
    }

    /// Notes that `group` will read `topic`/`partition` next at `next`.
    pub(crate) fn note_read(&self, group: &str, topic: &str, partition: u32, next: u64) {
        let mut members = lock(&self.members);
        if let Some(m) = members.get_mut(&(group.to_string(), topic.to_string())) {
            m.reads.insert(partition, next);
            m.active_at = Some(std::time::Instant::now());
        }
    }

    /// The groups with members reading `topic` in this process that joined or read
    /// within `active_within`, each with the next offset it will read per partition
    /// (where it has read).
    pub(crate) fn readers(
        &self,
        topic: &str,
        active_within: std::time::Duration,
    ) -> Vec<(String, HashMap<u32, u64>)> {
        lock(&self.members)
            .iter()
            .filter(|((_, t), m)| {
                t == topic
                    && !m.members.is_empty()
                    && m.active_at.is_some_and(|at| at.elapsed() <= active_within)
            })
            .map(|((g, _), m)| (g.clone(), m.reads.clone()))
            .collect()
    }

    /// The current generation and the partitions of `member` among `partitions`:
    /// partition p goes to the member at index p mod members, in join order.
    pub(crate) fn assignment(
        &self,
        group: &str,
        topic: &str,
        member: u64,
        partitions: u32,
    ) -> (u64, Vec<u32>) {
        let members = lock(&self.members);
        let Some(m) = members.get(&(group.to_string(), topic.to_string())) else {
            return (0, Vec::new());
        };
        let Some(index) = m.members.iter().position(|&x| x == member) else {
            return (m.generation, Vec::new());
        };
        let n = m.members.len() as u32;
        let mine = (0..partitions).filter(|p| p % n == index as u32).collect();
        (m.generation, mine)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let g = Groups::open(dir.path()).unwrap();
        g.commit("detect", "events", 2, 17).unwrap();
        g.commit("store", "events", 2, 5).unwrap();
        drop(g);
        let g = Groups::open(dir.path()).unwrap();
        assert_eq!(g.committed("detect", "events", 2), Some(17));
        assert_eq!(g.committed("detect", "events", 1), None);
        assert_eq!(g.slowest("events", 2), Some(5));
        assert_eq!(g.slowest("events", 1), Some(0));
        assert_eq!(g.slowest("alerts", 1), None);
    }

    #[test]
    fn partitions_are_shared_and_rebalanced() {
        let dir = tempfile::tempdir().unwrap();
        let g = Groups::open(dir.path()).unwrap();
        let a = g.join("grp", "events");
        let (gen1, all) = g.assignment("grp", "events", a, 4);
        assert_eq!(all, vec![0, 1, 2, 3]);
        let b = g.join("grp", "events");
        let (gen2, mine) = g.assignment("grp", "events", a, 4);
        let (_, theirs) = g.assignment("grp", "events", b, 4);
        assert!(gen2 > gen1);
        assert_eq!((mine, theirs), (vec![0, 2], vec![1, 3]));
        g.leave("grp", "events", a);
        assert_eq!(g.assignment("grp", "events", b, 4).1, vec![0, 1, 2, 3]);
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("topic", "events").is_ok());
        assert!(check_name("topic", "../x").is_err());
        assert!(check_name("topic", "").is_err());
        assert!(check_name("group", "a b").is_err());
    }
}
